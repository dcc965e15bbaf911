#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/check.h"
#include "core/cuda/backend.h"

namespace tether {

namespace {
constexpr size_t kCpuAlignment = 64;  // one cache line; what AVX-512 loads like
}

Storage::Storage(size_t nbytes, Device device, bool pinned) : nbytes_(nbytes), device_(device), pinned_(pinned) {
  TETHER_CHECK(!pinned || device.is_cpu(), "pinned memory is host memory, not ", device.str());
  data_ = pinned ? cuda::alloc_pinned(nbytes) : device_alloc(device, nbytes);
}

Storage::~Storage() {
  if (pinned_) cuda::free_pinned(data_);
  else device_free(device_, data_, nbytes_);
}

void* device_alloc(Device device, size_t nbytes) {
  if (device.is_cuda()) return cuda::alloc(device.index, nbytes);
  size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  if (rounded == 0) rounded = kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded);
  TETHER_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
  return p;
}

void device_free(Device device, void* ptr, size_t nbytes) {
  if (!ptr) return;
  if (device.is_cuda()) return cuda::free(device.index, ptr, nbytes);
  std::free(ptr);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  cuda::copy(dst, dst_device, src, src_device, nbytes);
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string n = text.substr(5);
    TETHER_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos,
                 "bad device '", text, "': expected cpu, cuda or cuda:N");
    return cuda(std::stoi(n));
  }
  TETHER_FAIL("bad device '", text, "': expected cpu, cuda or cuda:N");
}

CudaMath& cuda_math() {
  static CudaMath math;
  return math;
}

void set_tf32_mode(const std::string& mode) {
  if (mode == "conv") cuda_math() = {true, false};
  else if (mode == "all") cuda_math() = {true, true};
  else if (mode == "none") cuda_math() = {false, false};
  else TETHER_FAIL("--tf32 must be conv, all or none, got '", mode, "'");
}

std::string tf32_mode() {
  const CudaMath& m = cuda_math();
  if (m.tf32_conv && m.tf32_matmul) return "all";
  if (m.tf32_conv) return "conv";
  if (!m.tf32_matmul) return "none";
  return "matmul";
}

bool cuda_available() { return cuda_device_count() > 0; }
int cuda_device_count() { return cuda::device_count(); }

}  // namespace tether
