// STUB: replaced by the real kernels (see core/cpu/kernels.h).
#include "core/cpu/kernels.h"

namespace tether::cpu {

Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, Tensor* save_mean, Tensor* save_invstd) { TETHER_FAIL("cpu::batch_norm_forward is not implemented yet"); }
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         bool accumulate) { TETHER_FAIL("cpu::batch_norm_backward is not implemented yet"); }

}  // namespace tether::cpu
