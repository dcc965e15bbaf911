// Pooling ops (max, average, adaptive average): forward and backward side by side. The
// backward nodes call the raw backward kernels of core/ops.h into a fresh gradient tensor.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct MaxPool2dBackward : Node {
  Tensor indices;  // i64 argmax positions within each input plane
  Shape input_shape;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    ops::max_pool2d_backward(g, indices, gx, /*accumulate=*/false);
    return {gx};
  }
  std::string name() const override { return "MaxPool2dBackward"; }
  void release_saved() override { indices = Tensor(); }
};

struct AvgPool2dBackward : Node {
  Pool2dParams params;
  Shape input_shape;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    ops::avg_pool2d_backward(g, params, gx, /*accumulate=*/false);
    return {gx};
  }
  std::string name() const override { return "AvgPool2dBackward"; }
};

struct AdaptiveAvgPool2dBackward : Node {
  Shape input_shape;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(input_shape, g.dtype(), g.device());
    ops::adaptive_avg_pool2d_backward(g, gx, /*accumulate=*/false);
    return {gx};
  }
  std::string name() const override { return "AdaptiveAvgPool2dBackward"; }
};

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  const bool grad = needs_grad({x});
  Tensor indices;
  // Indices are only kept when a backward will need them.
  Tensor y = ops::max_pool2d_forward(x, p, grad ? &indices : nullptr);
  if (grad) {
    auto node = std::make_shared<MaxPool2dBackward>();
    node->indices = indices;
    node->input_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  Tensor y = ops::avg_pool2d_forward(x, p);
  if (needs_grad({x})) {
    auto node = std::make_shared<AvgPool2dBackward>();
    node->params = p;
    node->input_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  Tensor y = ops::adaptive_avg_pool2d_forward(x, out_h, out_w);
  if (needs_grad({x})) {
    auto node = std::make_shared<AdaptiveAvgPool2dBackward>();
    node->input_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

}  // namespace tether
