// Helpers shared by the CUDA pooling, batch-norm and softmax kernels (pool.cu, batch_norm.cu,
// softmax.cu): deterministic warp and block reductions, a device word that kernels use to
// report bad inputs back to the host, and the write-into-a-strided-gradient wrapper the CPU
// kernels also use.
//
// Reductions are fixed trees (shuffles, then one warp over the per-warp results) and the
// block result is broadcast from one thread, so every thread sees the same bits and a run is
// reproducible.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/cuda/backend.h"
#include "core/cuda/common.h"
#include "core/ops.h"

namespace tether::cuda {

// ---- reductions ---------------------------------------------------------------------------
struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
// Maximum that ignores NaN (as a running `v > m` scan from -inf does).
struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return (a > b || b != b) ? a : b; }
};

template <typename T>
__device__ __forceinline__ T neg_inf() { return static_cast<T>(-INFINITY); }

// Reduces over the 32 lanes of a warp; lane 0 holds the result.
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// Reduces over the block (blockDim.x a multiple of 32, at most 1024) and returns the result
// to every thread. `shared` holds 32 values; the block may call this again right away.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call may still read shared[0]
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? shared[lane] : shared[0];  // padding lanes repeat a real value, ignored below
    for (int offset = 16; offset > 0; offset >>= 1) {
      const T other = __shfl_down_sync(0xffffffffu, v, offset);
      if (lane + offset < warps) v = op(v, other);
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

// Threads per block for one row of `len` elements handled by one block.
inline int row_threads(int64_t len) {
  if (len <= 64) return 32;
  if (len <= 512) return 64;
  if (len <= 2048) return 128;
  return kThreads;
}

// ---- reporting bad inputs ------------------------------------------------------------------
// One 64-bit word on the device, set on the device's stream to bytes of `fill_byte`. Kernels
// count bad inputs there (atomicAdd) or record the first bad index (atomicMin); read() copies
// it back, which waits for the stream.
class DeviceWord {
 public:
  DeviceWord(int device, int fill_byte)
      : device_(device), buf_(Tensor::empty({1}, DType::i64, Device::cuda(device))) {
    TETHER_CHECK_CUDA(cudaMemsetAsync(buf_.raw_data(), fill_byte, sizeof(unsigned long long), stream(device)));
  }
  unsigned long long* get() const { return static_cast<unsigned long long*>(buf_.raw_data()); }
  unsigned long long read() const {
    unsigned long long v = 0;
    cuda::copy(&v, Device::cpu(), buf_.raw_data(), Device::cuda(device_), sizeof v);
    return v;
  }

 private:
  int device_;
  Tensor buf_;
};

// ---- gradients into strided tensors ----------------------------------------------------------
// Runs compute(out, accumulate) on `out` when it is contiguous; otherwise on a contiguous
// temporary that is then copied (or added) into `out`, so kernels only see dense memory.
template <typename Compute>
void write_into(const Tensor& out, bool accumulate, Compute&& compute) {
  if (out.is_contiguous()) {
    compute(out, accumulate);
    return;
  }
  Tensor tmp = Tensor::empty(out.shape(), out.dtype(), out.device());
  compute(tmp, false);
  if (accumulate) ops::axpy_(out, 1.0, tmp);
  else ops::copy_(out, tmp);
}

// Grid size for a grid-stride loop over `items` work items of one block each.
inline unsigned grid_for(int64_t items) {
  return static_cast<unsigned>(items < 1 ? 1 : (items > (int64_t{1} << 20) ? (int64_t{1} << 20) : items));
}

}  // namespace tether::cuda
