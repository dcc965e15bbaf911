#include "models/model.h"

namespace tether::models {

int64_t Model::num_classes() const {
  for (const auto& [n, t] : named_parameters())
    if (n == head_name() + ".weight") return t.size(0);
  TETHER_FAIL("model ", name, " has no head parameter ", head_name(), ".weight");
}

}  // namespace tether::models
