// STUB: forward and backward arrive with the kernels (see autograd/ops.h).
#include "autograd/ops.h"
namespace tether {
Tensor dropout(const Tensor&, double, bool, Generator&) { TETHER_FAIL("dropout is not implemented yet"); }
}  // namespace tether
