// conv2d: the forward kernel and the backward node (gradients for input, weight and bias,
// each computed only when that input needs it).
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct Conv2dBackward : Node {
  Tensor x, w;  // x only when w needs a gradient, w only when x does
  Shape x_shape, w_shape;
  Conv2dParams p;
  bool has_bias = false;

  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx, gw, gb;
    if (next[0]) {
      gx = Tensor::empty(x_shape, g.dtype(), g.device());
      ops::conv2d_backward_data(g, w, p, gx, /*accumulate=*/false);
    }
    if (next[1]) {
      gw = Tensor::empty(w_shape, g.dtype(), g.device());
      ops::conv2d_backward_weight(g, x, p, gw, /*accumulate=*/false);
    }
    if (has_bias && next[2]) {
      gb = Tensor::empty({w_shape[0]}, g.dtype(), g.device());
      ops::conv2d_backward_bias(g, gb, /*accumulate=*/false);
    }
    return has_bias ? std::vector<Tensor>{gx, gw, gb} : std::vector<Tensor>{gx, gw};
  }
  std::string name() const override { return "Conv2dBackward"; }
  void release_saved() override { x = w = Tensor(); }
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  Tensor y = ops::conv2d_forward(x, w, b, p);
  if (!needs_grad({x, w, b})) return y;
  auto node = std::make_shared<Conv2dBackward>();
  node->x_shape = x.shape();
  node->w_shape = w.shape();
  node->p = p;
  node->has_bias = b.defined();
  if (w.requires_grad()) node->x = saved(x);
  if (x.requires_grad()) node->w = saved(w);
  if (b.defined()) record(y, node, {x, w, b});
  else record(y, node, {x, w});
  return y;
}

}  // namespace tether
