// STUB: replaced by the real kernels (see core/cpu/kernels.h).
#include "core/cpu/kernels.h"

namespace tether::cpu {

Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices) { TETHER_FAIL("cpu::max_pool2d_forward is not implemented yet"); }
void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x,
                         bool accumulate) { TETHER_FAIL("cpu::max_pool2d_backward is not implemented yet"); }
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p) { TETHER_FAIL("cpu::avg_pool2d_forward is not implemented yet"); }
void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x,
                         bool accumulate) { TETHER_FAIL("cpu::avg_pool2d_backward is not implemented yet"); }
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) { TETHER_FAIL("cpu::adaptive_avg_pool2d_forward is not implemented yet"); }
void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate) { TETHER_FAIL("cpu::adaptive_avg_pool2d_backward is not implemented yet"); }

}  // namespace tether::cpu
