// The CUDA back end's entry points that core needs: memory, copies, synchronisation. When
// tether is built without CUDA (TETHER_WITH_CUDA undefined), core/cuda_stub.cpp defines them to
// report that clearly. Kernels mirror core/cpu/ signatures and are reached only through the op
// front (core/ops.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/device.h"

namespace tether::cuda {

int device_count();

// Device memory through the caching allocator (memory.cpp): freed blocks are kept per device
// and size and handed out again, so the training loop calls cudaMalloc only while its
// working set grows. On out-of-memory the cache is released and the allocation retried once;
// then an Error names the size requested and what the device has free.
void* alloc(int device_index, size_t nbytes);
void free(int device_index, void* ptr, size_t nbytes);

// Copies between any two devices, in the order of the device's stream. A copy to the host
// waits for it (the host reads the result next); host->device from pageable memory too.
// From pinned memory (alloc_pinned) host->device is asynchronous: the caller keeps the host
// buffer alive and unchanged until the device's stream passes the copy (free_pinned waits for it).
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

// Page-locked host memory for asynchronous host->device copies (the data loader's staging
// buffers), cached like device memory: a freed block is handed out again only after the copies
// that read it have finished.
void* alloc_pinned(size_t nbytes);
void free_pinned(void* ptr);
bool is_pinned(const void* ptr);

// "NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB)" for `tether info` and benchmark headers.
std::string describe_device(int device_index);
// "CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0, cuDNN 9.12.0" ("" without the back end).
std::string library_versions();

// Waits until all queued work of the device has finished (timings, benchmarks).
void synchronize(int device_index);

// Allocator statistics (bytes), PyTorch's torch.cuda.memory_allocated / max_memory_allocated /
// memory_reserved; reset_peak starts a new peak measurement; empty_cache returns cached
// blocks to the driver.
struct MemoryStats {
  int64_t allocated = 0;       // in tensors now
  int64_t peak_allocated = 0;  // most at once since the last reset_peak
  int64_t reserved = 0;        // held from the driver (allocated + cached)
  int64_t peak_reserved = 0;
  int64_t cuda_mallocs = 0;    // calls to cudaMalloc so far (a hot loop should add none)
};
MemoryStats memory_stats(int device_index);
void reset_peak(int device_index);
void empty_cache(int device_index);

}  // namespace tether::cuda
