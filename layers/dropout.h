// Dropout (torch.nn.Dropout) and StochasticDepth (torchvision.ops.StochasticDepth, "row"
// mode: each sample's residual branch is dropped with probability p and the survivors are
// scaled by 1/(1-p)). Both draw from default_generator() and are identities in eval mode.
#pragma once
#include "layers/module.h"

namespace tether::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override { return dropout(x, p, training_, default_generator()); }
  std::string type_name() const override { return "Dropout"; }
  double p;
};

class StochasticDepth : public Module {
 public:
  explicit StochasticDepth(double p);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "StochasticDepth"; }
  double p;
};

}  // namespace tether::nn
