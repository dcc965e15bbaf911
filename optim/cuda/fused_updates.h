// The optimizer updates of optim/sgd.cpp and optim/adam.cpp as fused multi-tensor CUDA kernels:
// one call updates every parameter of a group (one launch per dtype and kMaxTensors tensors,
// core/cuda/multi_tensor.cuh), with the CPU loops' formulas and rounding (scalars rounded to the
// tensor's type, add_alpha / addcmul as one fma, nothing else fused). Optimizer::step() calls
// them when the parameters live on a CUDA device. Tensors are contiguous, f32 or f64, on one
// device; the caller has created the state buffers (lazy state, as on the CPU). Built without
// CUDA, optim/fused_cuda_stub.cpp defines them to throw.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tether::optim::cuda {

// ---- SGD (sgd.cpp) ------------------------------------------------------------------------------
struct SgdTensor {
  Tensor param, grad;
  Tensor momentum_buffer;  // undefined without momentum
  bool first = false;      // the parameter's first update: the buffer is set to d_p, not read
};
struct SgdScalars {
  double lr = 0, weight_decay = 0, momentum = 0, dampening = 0;
  bool nesterov = false;
};
void sgd_update(const std::vector<SgdTensor>& tensors, const SgdScalars& s);

// ---- Adam / AdamW (adam.cpp) --------------------------------------------------------------------
struct AdamTensor {
  Tensor param, grad, exp_avg, exp_avg_sq;
  Tensor max_exp_avg_sq;  // amsgrad only
  int64_t step = 1;       // the parameter's step count including this update (>= 1)
};
struct AdamScalars {
  double lr = 0, weight_decay = 0, beta1 = 0, beta2 = 0, eps = 0;
  bool amsgrad = false, decoupled_weight_decay = false;
};
// The bias corrections come from each tensor's own step count, computed on the host in double
// exactly as adam.cpp does.
void adam_update(const std::vector<AdamTensor>& tensors, const AdamScalars& s);

}  // namespace tether::optim::cuda
