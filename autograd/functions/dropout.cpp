// Inverted dropout (torch.nn.functional.dropout): y = x * mask, where the mask holds
// 1/(1-p) with probability 1-p and 0 otherwise (ops::dropout_mask), so E[y] = x and
// evaluation needs no rescaling. The backward multiplies by the same saved mask.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct DropoutBackward : Node {
  Tensor mask;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::binary(ops::Binary::mul, g, mask)}; }
  std::string name() const override { return "DropoutBackward"; }
  void release_saved() override { mask = Tensor(); }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  TETHER_CHECK(p >= 0 && p <= 1, "dropout: probability p = ", p, " outside [0, 1]");
  if (!training || p == 0) return x;
  // p = 1 drops everything: x * 0 as PyTorch does (NaN stays NaN), gradient 0; no draws.
  if (p == 1) return mul(x, 0.0);
  Tensor mask = ops::dropout_mask(x.shape(), p, x.dtype(), x.device(), gen);
  Tensor y = ops::binary(ops::Binary::mul, x, mask);
  if (needs_grad({x})) {
    auto node = std::make_shared<DropoutBackward>();
    node->mask = mask;  // fresh, no autograd meta
    record(y, node, {x});
  }
  return y;
}

}  // namespace tether
