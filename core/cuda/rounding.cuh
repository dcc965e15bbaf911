// Arithmetic rounded exactly as written, for kernels that must reproduce a CPU loop compiled with
// fp-contract off (the optimizers): nvcc contracts a * b + c into one fma by default, but never
// fuses these intrinsics, and fma_rn is one rounding where the CPU calls std::fma. Division and
// square root are IEEE round-to-nearest, as on the CPU.
#pragma once
#include <cuda_runtime.h>

namespace tether::cuda::rn {

__device__ inline float add(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add(double a, double b) { return __dadd_rn(a, b); }
__device__ inline float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline double div(double a, double b) { return __ddiv_rn(a, b); }
__device__ inline float sqrt(float a) { return __fsqrt_rn(a); }
__device__ inline double sqrt(double a) { return __dsqrt_rn(a); }
// a * b + c, rounded once.
__device__ inline float fma(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ inline double fma(double a, double b, double c) { return __fma_rn(a, b, c); }

}  // namespace tether::cuda::rn
