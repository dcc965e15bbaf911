// The CUDA back end's entry points that core needs (memory). When tether is built without
// CUDA (TETHER_WITH_CUDA undefined), core/cuda_stub.cpp defines them to report that clearly.
// Kernels mirror core/cpu/ signatures and are reached only through the op front (core/ops.h).
#pragma once
#include <cstddef>

#include "core/device.h"

namespace tether::cuda {

int device_count();
void* alloc(int device_index, size_t nbytes);
void free(int device_index, void* ptr, size_t nbytes);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace tether::cuda
