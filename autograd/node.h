// Graph nodes. A Node is the backward of one recorded op: it receives the gradient of the
// op's (single) output and returns one gradient per input, in the order of `next`.
// Leaves that require grad end in an AccumulateGrad node that adds into their .grad.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tether {

class Node : public std::enable_shared_from_this<Node> {
 public:
  virtual ~Node() = default;
  // grad_output has the output's shape. An undefined entry in the result means "no gradient".
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  virtual std::string name() const = 0;
  // Drops saved tensors once the graph has been used (unless retained); see Engine.
  virtual void release_saved() {}

  // Edges to the nodes that produced the inputs (null where the input needs no gradient).
  std::vector<std::shared_ptr<Node>> next;
  // Creation order: the engine runs later nodes first, which keeps runs deterministic.
  uint64_t sequence = 0;
  bool released = false;
};

// Sink for a leaf tensor's gradient. Holds the leaf (as PyTorch does) so .grad outlives
// temporary handles.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf(std::move(leaf)) {}
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  std::string name() const override { return "AccumulateGrad"; }
  std::shared_ptr<TensorImpl> leaf;
};

}  // namespace tether
