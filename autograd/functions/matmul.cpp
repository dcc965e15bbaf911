// STUB: forward and backward arrive with the kernels (see autograd/ops.h).
#include "autograd/ops.h"
namespace tether {
Tensor matmul(const Tensor&, const Tensor&) { TETHER_FAIL("matmul is not implemented yet"); }
Tensor linear(const Tensor&, const Tensor&, const Tensor&) { TETHER_FAIL("linear is not implemented yet"); }
}  // namespace tether
