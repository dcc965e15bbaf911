// Grid-stride loop bounds shared by the elementwise, copy, reduction and random kernels
// (core/cuda/{copy,elementwise,reduce,random}.cu): a kernel launched with blocks_for(n)
// blocks walks i = grid_thread(), grid_thread() + grid_threads(), ... below n, in int64_t.
#pragma once
#include <cstdint>

namespace tether::cuda {

__device__ inline int64_t grid_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

}  // namespace tether::cuda
