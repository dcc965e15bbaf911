// STUB: replaced by the real kernels (see core/cpu/kernels.h).
#include "core/cpu/kernels.h"

namespace tether::cpu {

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c) { TETHER_FAIL("cpu::gemm is not implemented yet"); }
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) { TETHER_FAIL("cpu::matmul is not implemented yet"); }

}  // namespace tether::cpu
