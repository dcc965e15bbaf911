// Losses. cross_entropy is the fused kernel of core/ops.h (log-softmax + label-smoothed NLL);
// it is differentiable in the logits only (targets are class indices).
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct CrossEntropyBackward : Node {
  Tensor log_probs, target;  // log_softmax(logits) from the forward, i64 [N]
  double label_smoothing = 0;
  Reduction reduction = Reduction::mean;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(log_probs.shape(), log_probs.dtype(), log_probs.device());
    ops::cross_entropy_backward(g, log_probs, target, label_smoothing, reduction, gx, /*accumulate=*/false);
    return {gx};
  }
  std::string name() const override { return "CrossEntropyBackward"; }
  void release_saved() override { log_probs = target = Tensor(); }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction reduction) {
  const bool grad = needs_grad({logits});
  Tensor log_probs;
  Tensor loss = ops::cross_entropy_forward(logits, target, label_smoothing, reduction, grad ? &log_probs : nullptr);
  if (grad) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->log_probs = log_probs;  // a fresh kernel output with no autograd meta
    node->target = saved(target);
    node->label_smoothing = label_smoothing;
    node->reduction = reduction;
    record(loss, node, {logits});
  }
  return loss;
}

}  // namespace tether
