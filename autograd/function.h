// Helpers for writing differentiable ops (autograd/functions/*.cpp). The pattern:
//
//   struct ExpBackward : Node { Tensor y; ...backward(g) { return {g * y}; } };
//   Tensor exp(const Tensor& x) {
//     Tensor y = ops::unary(Unary::exp, x);                // raw kernel, no graph
//     if (needs_grad({x})) record(y, make_node<ExpBackward>(saved(y)), {x});
//     return y;
//   }
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/meta.h"

namespace tether {

// True when grad mode is on and any input requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// A tensor to keep inside a node: same data, no autograd meta (so an op's output saved in
// its own node makes no reference cycle).
inline Tensor saved(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

// Attaches `node` as out's grad_fn, with one edge per input (null for constants).
void record(const Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

template <typename NodeT, typename... Args>
std::shared_ptr<NodeT> make_node(Args&&... args) {
  return std::make_shared<NodeT>(NodeT{{}, std::forward<Args>(args)...});
}

}  // namespace tether
