// CPU kernels: the signatures of core/kernels.inc (documented in core/ops.h), reached only
// through the op front. One file per family: copy, elementwise, reduce, gemm, conv, pool,
// batch_norm, softmax (+ cross-entropy), random.
#pragma once
#include "core/ops.h"

namespace tether::cpu {
using ops::Binary;
using ops::Conv2dParams;
using ops::Pool2dParams;
using ops::Reduction;
using ops::Unary;

#include "core/kernels.inc"

}  // namespace tether::cpu
