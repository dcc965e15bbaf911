// What every file of the CUDA back end shares: error checks that name the failed call and its
// status, the per-device stream and library handles, launch sizes, and the strided indexer
// that elementwise and reduction kernels use. Included by .cu files (nvcc) and by the few .cpp
// files of core/cuda/ (host compiler); device-only parts are guarded by __CUDACC__.
//
// Streams: all work of one device goes to one stream (stream(device)), cuBLAS and cuDNN
// included, so kernels run in order and memory freed to the caching allocator (memory.cpp) is
// safe to reuse by the next kernel without events. Host reads (item(), to_vector, copies to the
// CPU) synchronise that stream.
#pragma once
#include <cstdint>
#include <string>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/check.h"
#include "core/tensor.h"

namespace tether::cuda {

// ---- errors ---------------------------------------------------------------------------------
// One message names the call, the library and its status:
//   "cudnnConvolutionForward(...) failed: CUDNN_STATUS_BAD_PARAM (cuDNN)"
std::string cublas_status_name(cublasStatus_t status);

}  // namespace tether::cuda

#define TETHER_CHECK_CUDA(call)                                                                 \
  do {                                                                                          \
    const cudaError_t status_ = (call);                                                         \
    TETHER_CHECK(status_ == cudaSuccess, #call, " failed: ", cudaGetErrorName(status_), " (",   \
                 cudaGetErrorString(status_), ")");                                             \
  } while (0)

#define TETHER_CHECK_CUBLAS(call)                                                               \
  do {                                                                                          \
    const cublasStatus_t status_ = (call);                                                      \
    TETHER_CHECK(status_ == CUBLAS_STATUS_SUCCESS, #call, " failed: ",                          \
                 ::tether::cuda::cublas_status_name(status_), " (cuBLAS)");                     \
  } while (0)

#define TETHER_CHECK_CUDNN(call)                                                                \
  do {                                                                                          \
    const cudnnStatus_t status_ = (call);                                                       \
    TETHER_CHECK(status_ == CUDNN_STATUS_SUCCESS, #call, " failed: ", cudnnGetErrorString(status_), \
                 " (cuDNN)");                                                                   \
  } while (0)

// After every kernel launch: a bad launch configuration is reported where it happened, naming
// the kernel, not at the next synchronising call.
#define TETHER_CHECK_LAUNCH(kernel_name)                                                        \
  do {                                                                                          \
    const cudaError_t status_ = cudaGetLastError();                                             \
    TETHER_CHECK(status_ == cudaSuccess, "launch of CUDA kernel ", kernel_name, " failed: ",    \
                 cudaGetErrorName(status_), " (", cudaGetErrorString(status_), ")");            \
  } while (0)

namespace tether::cuda {

// ---- devices, streams, handles ------------------------------------------------------------------
// Makes `index` the current device for the guard's lifetime (restores the previous one).
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// The device's work stream (created on first use, never destroyed), and the library handles
// bound to it. Each call also makes `index` the current device.
cudaStream_t stream(int index);
cublasHandle_t cublas(int index);
cudnnHandle_t cudnn(int index);
// The device of a CUDA tensor (checks it is one) and its stream, current device set.
int device_of(const Tensor& t);
inline cudaStream_t stream_of(const Tensor& t) { return stream(device_of(t)); }

// ---- launch sizes -----------------------------------------------------------------------------
constexpr int kThreads = 256;  // threads per block of our elementwise kernels
// Blocks for n elements at kThreads per block, grid-stride loops cover the rest.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

// ---- strided indexing -----------------------------------------------------------------------------
// Up to kMaxDims dims and K operands: maps a linear (row-major) index over `sizes` to each
// operand's element offset. Built on the host from shapes/strides (coalescing like the CPU's
// for_each_row), passed by value to kernels.
constexpr int kMaxDims = 8;
template <int K>
struct StridedIndexer {
  int dims = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[K][kMaxDims] = {};

#ifdef __CUDACC__
  __host__ __device__ void offsets(int64_t linear, int64_t (&out)[K]) const {
    for (int k = 0; k < K; ++k) out[k] = 0;
    for (int d = dims - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < K; ++k) out[k] += i * strides[k][d];
    }
  }
#endif
};

// The indexer for `shape` with one stride vector per operand (each shape.size() long; 0 for a
// broadcast dim). Drops size-1 dims and merges dims contiguous for every operand; throws when
// more than kMaxDims dims remain.
template <int K>
StridedIndexer<K> make_indexer(const Shape& shape, const Shape (&strides)[K]) {
  Shape sh;
  Shape st[K];
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sh.push_back(shape[d]);
    for (int k = 0; k < K; ++k) st[k].push_back(strides[k][d]);
  }
  for (int d = static_cast<int>(sh.size()) - 2; d >= 0; --d) {
    bool mergeable = true;
    for (int k = 0; k < K; ++k) mergeable &= st[k][d] == st[k][d + 1] * sh[d + 1];
    if (!mergeable) continue;
    sh[d] *= sh[d + 1];
    sh.erase(sh.begin() + d + 1);
    for (int k = 0; k < K; ++k) {
      st[k][d] = st[k][d + 1];
      st[k].erase(st[k].begin() + d + 1);
    }
  }
  TETHER_CHECK(sh.size() <= static_cast<size_t>(kMaxDims), "CUDA kernels index at most ", kMaxDims,
               " non-mergeable dims, got shape ", shape_str(shape));
  StridedIndexer<K> ix;
  ix.dims = static_cast<int>(sh.size());
  for (int d = 0; d < ix.dims; ++d) {
    ix.sizes[d] = sh[d];
    for (int k = 0; k < K; ++k) ix.strides[k][d] = st[k][d];
  }
  return ix;
}

// TF32: the cuBLAS and cuDNN wrappers read tether::cuda_math() (core/device.h) at every call.

}  // namespace tether::cuda
