// The autograd record attached to a tensor (TensorImpl::autograd).
#pragma once
#include <memory>

#include "autograd/node.h"

namespace tether {

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                                   // accumulated by backward() (leaves only)
  std::shared_ptr<Node> grad_fn;                 // the op that produced it; null for leaves
  std::weak_ptr<AccumulateGrad> accumulator;     // leaves: their gradient sink, made lazily
};

// The tensor's meta, created on first use.
AutogradMeta& autograd_meta(const Tensor& t);
// The node gradients for `t` flow into: its grad_fn, its AccumulateGrad (leaf that requires
// grad), or null (constant).
std::shared_ptr<Node> gradient_edge(const Tensor& t);

}  // namespace tether
