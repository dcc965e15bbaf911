// SPEC 1 rows for the fused regularizer kernels (penalties, projections): a tensor viewed as
// [d0, rest] (1-D: [C, 1]; 0-d: one row of one). Row-wise kernels give each row to one warp
// (lane l takes elements l, l + 32, ...) and a block kWarps rows at a time, so a row's sum is the
// same bits wherever and however often it is computed.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/cuda/multi_tensor.cuh"

namespace tether::reg::cuda {

struct RowShape {
  int64_t count, len;
};
inline RowShape rows_of(const Tensor& x) {
  const int64_t r = x.dim() == 0 ? 1 : x.shape()[0];
  return {r, r == 0 ? 0 : x.numel() / r};
}

// Rows per block: about kChunk elements, between 1 and 256 rows.
inline int64_t rows_per_chunk(int64_t len) {
  return std::max<int64_t>(1, std::min<int64_t>(256, tether::cuda::mt::kChunk / std::max<int64_t>(1, len)));
}

#ifdef __CUDACC__

// Σ_{j<len} term(j) by the calling warp, the same bits in every lane.
template <typename Term>
__device__ inline double warp_row_sum(int64_t len, const Term& term) {
  double s = 0;
  for (int64_t j = threadIdx.x % 32; j < len; j += 32) s += term(j);
  return tether::cuda::mt::warp_sum(s);
}

// ‖x_r − c_r‖₁ (c null: 0) of the row of `len` elements at `at`, in double, by the calling warp.
template <typename T>
__device__ inline double row_abs_diff_sum(const T* x, const T* c, int64_t at, int64_t len) {
  return warp_row_sum(len, [&](int64_t j) {
    return fabs(c ? static_cast<double>(x[at + j]) - static_cast<double>(c[at + j]) : static_cast<double>(x[at + j]));
  });
}

#endif  // __CUDACC__

}  // namespace tether::reg::cuda
