// Stand-ins for the fused CUDA regularizer kernels (regularizers/cuda/*.h) when tether is built
// without the CUDA back end: no CUDA tensor can exist then, so reaching one is a bug or a
// misconfigured build, reported clearly instead of failing to link.
#ifndef TETHER_WITH_CUDA
#include "core/check.h"
#include "regularizers/cuda/dtnh_fused.h"
#include "regularizers/cuda/projection_fused.h"
#include "regularizers/cuda/sp_fused.h"

namespace tether::reg::cuda {

static constexpr const char* kNoCuda =
    "the fused CUDA regularizer kernels need tether built with the CUDA back end (-DTETHER_CUDA=ON)";

std::vector<double> sp_values(kernels::Kind, const std::vector<kernels::Operands>&, double) { TETHER_FAIL(kNoCuda); }
void project_l2_balls(const std::vector<Ball>&) { TETHER_FAIL(kNoCuda); }
void project_row_l1_balls(const std::vector<Ball>&) { TETHER_FAIL(kNoCuda); }
std::vector<std::vector<double>> row_l1_norms(const std::vector<Ball>&) { TETHER_FAIL(kNoCuda); }
std::vector<DtnhSums> dtnh_sums(const std::vector<Tensor>&, const std::vector<Tensor>&) { TETHER_FAIL(kNoCuda); }
void dtnh_apply(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<double>&) {
  TETHER_FAIL(kNoCuda);
}

}  // namespace tether::reg::cuda
#endif
