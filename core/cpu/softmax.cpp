// STUB: replaced by the real kernels (see core/cpu/kernels.h).
#include "core/cpu/kernels.h"

namespace tether::cpu {

Tensor softmax(const Tensor& x, int dim) { TETHER_FAIL("cpu::softmax is not implemented yet"); }
Tensor log_softmax(const Tensor& x, int dim) { TETHER_FAIL("cpu::log_softmax is not implemented yet"); }
void softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                      bool accumulate) { TETHER_FAIL("cpu::softmax_backward is not implemented yet"); }
void log_softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                          bool accumulate) { TETHER_FAIL("cpu::log_softmax_backward is not implemented yet"); }
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs) { TETHER_FAIL("cpu::cross_entropy_forward is not implemented yet"); }
void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate) { TETHER_FAIL("cpu::cross_entropy_backward is not implemented yet"); }

}  // namespace tether::cpu
