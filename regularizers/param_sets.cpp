#include "regularizers/param_sets.h"

namespace tether::reg {

ParamFilter parse_param_filter(const std::string& name) {
  if (name == "weights") return ParamFilter::weights;
  if (name == "all") return ParamFilter::all;
  TETHER_FAIL("--reg-params must be 'weights' or 'all', got '", name, "'");
}

bool is_head_parameter(const std::string& name, const std::string& head_name) {
  return name.size() > head_name.size() && name.compare(0, head_name.size(), head_name) == 0 &&
         name[head_name.size()] == '.';
}

ParamSets select_param_sets(const models::Model& model, ParamFilter filter) {
  ParamSets sets;
  const std::string head = model.head_name();
  for (const auto& [name, param] : model.named_parameters()) {
    if (!param.requires_grad()) continue;                              // frozen: in neither set
    if (filter == ParamFilter::weights && param.dim() < 2) continue;   // biases, BN affine
    if (is_head_parameter(name, head)) {
      sets.head.emplace_back(name, param);
    } else {
      sets.inherited.emplace_back(name, param);
      sets.w0.emplace(name, param.detach().clone());
    }
  }
  return sets;
}

}  // namespace tether::reg
