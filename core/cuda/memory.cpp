// Device memory for the CUDA back end. Plain cudaMalloc/cudaFree for now; the caching
// allocator of the CUDA issue replaces alloc/free here without touching callers.
#include <cuda_runtime.h>

#include "core/check.h"
#include "core/cuda/backend.h"

#define TETHER_CHECK_CUDA(call)                                                          \
  do {                                                                                   \
    cudaError_t status_ = (call);                                                        \
    TETHER_CHECK(status_ == cudaSuccess, #call, " failed: ", cudaGetErrorString(status_)); \
  } while (0)

namespace tether::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

void* alloc(int device_index, size_t nbytes) {
  TETHER_CHECK_CUDA(cudaSetDevice(device_index));
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, nbytes == 0 ? 1 : nbytes);
  if (status == cudaErrorMemoryAllocation) {
    size_t free_bytes = 0, total = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_bytes, &total);
    TETHER_FAIL("CUDA out of memory on cuda:", device_index, ": requested ", nbytes, " bytes, ",
                free_bytes, " of ", total, " free");
  }
  TETHER_CHECK_CUDA(status);
  return p;
}

void free(int device_index, void* ptr, size_t) {
  cudaSetDevice(device_index);
  cudaFree(ptr);  // never throws from a destructor path
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  cudaMemcpyKind kind = cudaMemcpyDefault;  // unified addressing picks the direction
  if (dst_device.is_cuda()) TETHER_CHECK_CUDA(cudaSetDevice(dst_device.index));
  else if (src_device.is_cuda()) TETHER_CHECK_CUDA(cudaSetDevice(src_device.index));
  TETHER_CHECK_CUDA(cudaMemcpy(dst, src, nbytes, kind));
}

}  // namespace tether::cuda
