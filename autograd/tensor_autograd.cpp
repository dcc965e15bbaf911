// The autograd methods declared on Tensor (core/tensor.h).
#include "autograd/engine.h"
#include "autograd/meta.h"

namespace tether {

bool Tensor::requires_grad() const {
  const auto& meta = impl().autograd;
  return meta && meta->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool value) {
  AutogradMeta& meta = autograd_meta(*this);
  TETHER_CHECK(value || !meta.grad_fn, "set_requires_grad(false) on a non-leaf tensor; use detach()");
  TETHER_CHECK(!value || is_floating(dtype()), "only floating tensors can require grad, got ", str());
  meta.requires_grad = value;
  return *this;
}

bool Tensor::is_leaf() const {
  const auto& meta = impl().autograd;
  return !meta || !meta->grad_fn;
}

Tensor Tensor::grad() const {
  const auto& meta = impl().autograd;
  return meta ? meta->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    TETHER_CHECK(grad.shape() == shape(), "set_grad: gradient ", shape_str(grad.shape()), " for tensor ",
                 shape_str(shape()));
  autograd_meta(*this).grad = grad;
}

void Tensor::zero_grad() const {
  if (impl().autograd) impl().autograd->grad = Tensor();
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  const auto& meta = impl().autograd;
  return meta ? meta->grad_fn : nullptr;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  tether::backward({*this}, {gradient}, retain_graph);
}

}  // namespace tether
