// Storage: one ref-counted block of device memory. Tensors are views (shape, strides,
// offset) onto a Storage; several tensors may share one.
#pragma once
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace tether {

class Storage {
 public:
  // Uninitialised memory. pinned (CPU only): page-locked host memory (CUDA builds; plain host
  // memory otherwise), whose copies to a GPU are asynchronous (the data loader's batches).
  Storage(size_t nbytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  bool pinned() const { return pinned_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  bool pinned_ = false;
};

// Device memory primitives behind Storage; the CUDA ones live in core/cuda/.
void* device_alloc(Device device, size_t nbytes);
void device_free(Device device, void* ptr, size_t nbytes);
// Copies nbytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);

}  // namespace tether
