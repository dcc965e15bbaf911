// STUB: replaced by the real kernels (see core/cpu/kernels.h).
#include "core/cpu/kernels.h"

namespace tether::cpu {

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) { TETHER_FAIL("cpu::conv2d_forward is not implemented yet"); }
void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                          const Tensor& grad_x, bool accumulate) { TETHER_FAIL("cpu::conv2d_backward_data is not implemented yet"); }
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p,
                            const Tensor& grad_w, bool accumulate) { TETHER_FAIL("cpu::conv2d_backward_weight is not implemented yet"); }
void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate) { TETHER_FAIL("cpu::conv2d_backward_bias is not implemented yet"); }

}  // namespace tether::cpu
