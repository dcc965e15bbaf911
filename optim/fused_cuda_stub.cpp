// Stand-ins for the fused CUDA optimizer updates (optim/cuda/fused_updates.h) when tether is
// built without the CUDA back end: no CUDA tensor can exist then, so reaching one is a bug or a
// misconfigured build, reported clearly instead of failing to link.
#ifndef TETHER_WITH_CUDA
#include "core/check.h"
#include "optim/cuda/fused_updates.h"

namespace tether::optim::cuda {

static constexpr const char* kNoCuda =
    "the fused CUDA optimizer updates need tether built with the CUDA back end (-DTETHER_CUDA=ON)";

void sgd_update(const std::vector<SgdTensor>&, const SgdScalars&) { TETHER_FAIL(kNoCuda); }
void adam_update(const std::vector<AdamTensor>&, const AdamScalars&) { TETHER_FAIL(kNoCuda); }

}  // namespace tether::optim::cuda
#endif
