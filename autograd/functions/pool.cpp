// STUB: forward and backward arrive with the kernels (see autograd/ops.h).
#include "autograd/ops.h"
namespace tether {
Tensor max_pool2d(const Tensor&, const Pool2dParams&) { TETHER_FAIL("max_pool2d is not implemented yet"); }
Tensor avg_pool2d(const Tensor&, const Pool2dParams&) { TETHER_FAIL("avg_pool2d is not implemented yet"); }
Tensor adaptive_avg_pool2d(const Tensor&, int64_t, int64_t) { TETHER_FAIL("adaptive_avg_pool2d is not implemented yet"); }
}  // namespace tether
