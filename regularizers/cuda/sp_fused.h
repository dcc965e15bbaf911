// The closed-form penalty kernels of regularizers/sp_kernels.h for CUDA tensors, over a whole list
// of tensors at once (core/cuda/multi_tensor.cuh): per kind one launch per dtype (elementwise
// kinds), two (group_lasso: row norms, then the gradient) or three (mars: row norms, the first
// maximising row of each tensor, the gradient). Values are reduced deterministically: per-chunk
// partial sums in double land in a device buffer, which comes back in one copy at the end and is
// added per tensor in chunk order on the host. Gradients follow GradOut exactly as on the CPU
// (k, accumulate or overwrite). kernels::values() and the single-tensor kernels call this for
// CUDA tensors; built without CUDA, regularizers/fused_cuda_stub.cpp defines it to throw.
#pragma once
#include <vector>

#include "regularizers/sp_kernels.h"

namespace tether::reg::cuda {

// The value of `kind` on each item, in order; every tensor on one CUDA device.
std::vector<double> sp_values(kernels::Kind kind, const std::vector<kernels::Operands>& items, double eps);

}  // namespace tether::reg::cuda
