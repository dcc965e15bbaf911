// Batch normalisation: forward and backward side by side. Differentiable in x, weight and
// bias; the running statistics are updated in place by the kernel and never differentiated.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct BatchNormBackward : Node {
  Tensor x, weight, save_mean, save_invstd;
  DType bias_dtype = DType::f32;
  bool training = true;
  std::vector<Tensor> backward(const Tensor& g) override {
    // Only the gradients some input will receive are computed (next[i] is null otherwise).
    Tensor gx, gw, gb;
    if (next[0]) gx = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (next[1]) gw = Tensor::empty(weight.shape(), weight.dtype(), weight.device());
    if (next[2]) gb = Tensor::empty({x.size(1)}, bias_dtype, x.device());
    ops::batch_norm_backward(g, x, weight, save_mean, save_invstd, training, gx, gw, gb, /*accumulate=*/false);
    return {gx, gw, gb};
  }
  std::string name() const override { return "BatchNormBackward"; }
  void release_saved() override { x = weight = save_mean = save_invstd = Tensor(); }
};

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  const bool grad = needs_grad({x, weight, bias});
  Tensor save_mean, save_invstd;
  Tensor y = ops::batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                     grad ? &save_mean : nullptr, grad ? &save_invstd : nullptr);
  if (grad) {
    auto node = std::make_shared<BatchNormBackward>();
    node->x = saved(x);
    node->weight = saved(weight);
    node->save_mean = save_mean;
    node->save_invstd = save_invstd;
    node->bias_dtype = bias.defined() ? bias.dtype() : x.dtype();
    node->training = training;
    record(y, node, {x, weight, bias});
  }
  return y;
}

}  // namespace tether
