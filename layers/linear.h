// Linear, as torch.nn.Linear: y = x W^T + b, W [out, in], PyTorch's default initialisation.
#pragma once
#include "layers/module.h"

namespace tether::nn {

struct LinearOptions {
  int64_t in = 0, out = 0;
  bool bias = true;
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  std::string type_name() const override { return "Linear"; }

  LinearOptions options;
  Tensor weight, bias;
};

}  // namespace tether::nn
