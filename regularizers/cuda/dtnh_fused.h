// DTNH's two passes (regularizers/dtnh.cpp) for CUDA gradients, over all tensors at once
// (core/cuda/multi_tensor.cuh): one launch for the sums a = ‖g_J‖², b = ‖g_Ω‖², c = ⟨g_J, g_Ω⟩ of
// every tensor (per-chunk partials in double, one copy back, added in chunk order), one launch
// to write d. dtnh_direction calls them when the gradients live on a CUDA device; built without
// CUDA, regularizers/fused_cuda_stub.cpp defines them to throw.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace tether::reg::cuda {

struct DtnhSums {
  double a = 0, b = 0, c = 0;
};

// g_j[k] contiguous f32/f64 on one CUDA device; g_omega[k] undefined (b = c = 0) or of the same
// shape, dtype and device.
std::vector<DtnhSums> dtnh_sums(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega);
// g_j[k] ← g_j[k]·(1 − s[k]) (only where s[k] ≠ 0), then + g_omega[k] (where defined): the CPU's
// ops::scale_ and ops::axpy_(·, 1, ·), rounded as they round.
void dtnh_apply(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega, const std::vector<double>& s);

}  // namespace tether::reg::cuda
