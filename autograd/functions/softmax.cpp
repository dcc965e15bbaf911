// softmax and log_softmax over one dimension. Both save only their output: the backward
// kernels need y (softmax) or log p (log_softmax), never the input.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct SoftmaxBackward : Node {
  Tensor y;  // the forward output: softmax(x) or log_softmax(x)
  int dim = -1;
  bool log = false;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(y.shape(), y.dtype(), y.device());
    if (log) ops::log_softmax_backward(g, y, dim, gx, /*accumulate=*/false);
    else ops::softmax_backward(g, y, dim, gx, /*accumulate=*/false);
    return {gx};
  }
  std::string name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { y = Tensor(); }
};

Tensor softmax_op(const Tensor& x, int dim, bool log) {
  Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
  if (needs_grad({x})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->y = saved(y);
    node->dim = dim;
    node->log = log;
    record(y, node, {x});
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_op(x, dim, false); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_op(x, dim, true); }

}  // namespace tether
