// Sequential: children named "0", "1", ... called in order (torch.nn.Sequential).
#pragma once
#include "layers/module.h"

namespace tether::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<ModulePtr>& modules) {
    for (const ModulePtr& m : modules) push_back(m);
  }
  void push_back(const ModulePtr& m) { register_module(std::to_string(children().size()), m); }
  // A named child (torchvision uses names like "conv1" in some Sequentials).
  void add(const std::string& name, const ModulePtr& m) { register_module(name, m); }
  ModulePtr operator[](size_t i) const { return children().at(i).second; }
  size_t size() const { return children().size(); }
  // Replaces child i (e.g. a classifier head).
  void set(size_t i, const ModulePtr& m) { replace_module(children().at(i).first, m); }

  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (const auto& [name, m] : children()) y = (*m)(y);
    return y;
  }
  std::string type_name() const override { return "Sequential"; }
};

}  // namespace tether::nn
