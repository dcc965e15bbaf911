// --fisher FILE (SPEC 2, SPEC 4): the diagonal Fisher F_j of every tensor of S, keyed by
// parameter name, for l2sp-fisher and glsp-fisher.
#include <cmath>

#include "core/safetensors.h"
#include "regularizers/penalty.h"

namespace tether::reg {

std::map<std::string, Tensor> load_fisher(const std::string& path, const ParamSets& sets) {
  const safetensors::File file = safetensors::load(path);
  std::map<std::string, Tensor> out;
  for (const auto& [name, w] : sets.inherited) {
    auto it = file.tensors.find(name);
    TETHER_CHECK(it != file.tensors.end(), "--fisher ", path, ": no tensor '", name,
                 "' (one per penalised parameter, same name and shape)");
    const Tensor& f = it->second;
    TETHER_CHECK(f.shape() == w.shape(), "--fisher ", path, ": tensor '", name, "' has shape ", shape_str(f.shape()),
                 " but the parameter has shape ", shape_str(w.shape()));
    TETHER_CHECK(is_floating(f.dtype()), "--fisher ", path, ": tensor '", name, "' is not floating point");
    Tensor host = ops::cast(f, w.dtype());
    for (double v : host.to_vector<double>())
      TETHER_CHECK(std::isfinite(v) && v >= 0, "--fisher ", path, ": tensor '", name,
                   "' holds a negative or non-finite value (", v, "); F must be >= 0 and finite");
    out.emplace(name, host.to(w.device()));
  }
  return out;
}

}  // namespace tether::reg
