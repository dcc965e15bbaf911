#include "models/registry.h"

#include <functional>
#include <map>

#include "models/efficientnet.h"
#include "models/resnet.h"
#include "models/vgg.h"

namespace tether::models {

namespace {
const std::map<std::string, std::function<ModelPtr(const ModelOptions&)>>& registry() {
  static const std::map<std::string, std::function<ModelPtr(const ModelOptions&)>> r = {
      {"resnet18", resnet18},   {"resnet34", resnet34},   {"resnet50", resnet50},
      {"resnet101", resnet101}, {"resnet152", resnet152}, {"vgg11", vgg11},
      {"vgg13", vgg13},         {"vgg16", vgg16},         {"vgg19", vgg19},
      {"vgg11_bn", vgg11_bn},   {"vgg13_bn", vgg13_bn},   {"vgg16_bn", vgg16_bn},
      {"vgg19_bn", vgg19_bn},   {"efficientnet_b0", efficientnet_b0}, {"efficientnet_b1", efficientnet_b1},
      {"efficientnet_b2", efficientnet_b2}, {"efficientnet_b3", efficientnet_b3},
  };
  return r;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& [name, f] : registry()) out.push_back(name);
  return out;
}

ModelPtr create_model(const std::string& name, const ModelOptions& options) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    TETHER_FAIL("unknown model '", name, "' (known: ", known, ")");
  }
  TETHER_CHECK(options.num_classes >= 1, "num_classes must be positive, got ", options.num_classes);
  return it->second(options);
}

}  // namespace tether::models
