#include "models/model.h"

namespace tether::models {

int64_t Model::num_classes() const {
  for (const auto& [n, t] : named_parameters())
    if (n == head_name() + ".weight") return t.size(0);
  TETHER_FAIL("model ", name, " has no head parameter ", head_name(), ".weight");
}

std::vector<std::string> freeze_blocks(Model& model, int64_t count) {
  const auto blocks = model.blocks();
  TETHER_CHECK(count >= 0 && count <= static_cast<int64_t>(blocks.size()), "--freeze-blocks ", count, ": ", model.name,
               " has ", blocks.size(), " blocks (see `tether models --blocks`)");
  std::vector<std::string> frozen;
  for (int64_t b = 0; b < count; ++b)
    for (const std::string& module : blocks[static_cast<size_t>(b)]) {
      model.freeze(module);
      frozen.push_back(module);
    }
  return frozen;
}

}  // namespace tether::models
