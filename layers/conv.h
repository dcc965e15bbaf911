// Conv2d, as torch.nn.Conv2d: weight [out, in/groups, k, k], optional bias [out],
// PyTorch's default initialisation (kaiming_uniform_(a=sqrt(5)), bias U(-1/sqrt(fan_in), ..)).
#pragma once
#include "layers/module.h"

namespace tether::nn {

struct Conv2dOptions {
  int64_t in = 0, out = 0, kernel = 1;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options);
  Tensor forward(const Tensor& x) override { return conv2d(x, weight, bias, params); }
  std::string type_name() const override { return "Conv2d"; }

  Conv2dOptions options;
  ops::Conv2dParams params;
  Tensor weight, bias;  // bias undefined when options.bias is false
};

}  // namespace tether::nn
