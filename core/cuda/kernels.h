// CUDA kernels: the same signatures as the CPU back end (core/kernels.inc), implemented in
// core/cuda/*.cu by the CUDA back end. The op front (core/ops.cpp) calls them for tensors on
// a CUDA device once they exist (see TETHER_ON_DEVICE there).
#pragma once
#include "core/ops.h"

namespace tether::cuda {
using ops::Binary;
using ops::Conv2dParams;
using ops::Pool2dParams;
using ops::Reduction;
using ops::Unary;

#include "core/kernels.inc"

}  // namespace tether::cuda
