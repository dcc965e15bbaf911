// Pooling layers, as torch.nn.MaxPool2d / AvgPool2d / AdaptiveAvgPool2d.
#pragma once
#include "layers/module.h"

namespace tether::nn {

struct PoolOptions {
  int64_t kernel = 1;
  int64_t stride = 0;  // 0 = kernel (PyTorch's default)
  int64_t padding = 0;
  int64_t dilation = 1;  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};

inline ops::Pool2dParams pool_params(const PoolOptions& o) {
  const int64_t s = o.stride == 0 ? o.kernel : o.stride;
  return {{o.kernel, o.kernel}, {s, s}, {o.padding, o.padding}, {o.dilation, o.dilation}, o.ceil_mode,
          o.count_include_pad};
}

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const PoolOptions& o) : params(pool_params(o)) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, params); }
  std::string type_name() const override { return "MaxPool2d"; }
  ops::Pool2dParams params;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const PoolOptions& o) : params(pool_params(o)) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, params); }
  std::string type_name() const override { return "AvgPool2d"; }
  ops::Pool2dParams params;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h(out_h), out_w(out_w) {}
  explicit AdaptiveAvgPool2d(int64_t out) : AdaptiveAvgPool2d(out, out) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, out_h, out_w); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  int64_t out_h, out_w;
};

}  // namespace tether::nn
