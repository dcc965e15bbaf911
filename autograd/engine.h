// The backward engine: runs the recorded graph in reverse topological order.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace tether {

// Gradients of `outputs` (weighted by `grad_outputs`; undefined entries mean ones, for
// scalars) with respect to `inputs`: leaves, parameters or intermediate activations alike.
// Does not touch any .grad. With retain_graph the same graph can be used again (DTNH takes
// ∇J and ∇Ω from one forward; PtR takes ∂J/∂rep before the full backward). An input the
// outputs do not depend on gets an undefined tensor unless allow_unused is false (then: error).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = true);

// Backpropagates into the .grad of every leaf that requires grad (Tensor::backward).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              bool retain_graph = false);

}  // namespace tether
