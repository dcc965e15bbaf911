// Per-device state of the CUDA back end: one work stream, and the cuBLAS and cuDNN handles
// bound to it, created on first use and kept for the life of the process (like PyTorch's
// current-stream handles). Also the names of library status codes for error messages.
#include <array>
#include <cstdio>
#include <mutex>

#include "core/cuda/backend.h"
#include "core/cuda/common.h"

namespace tether::cuda {

namespace {
constexpr int kMaxDevices = 64;

struct DeviceContext {
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

DeviceContext& context(int index) {
  static std::array<DeviceContext, kMaxDevices>* contexts = new std::array<DeviceContext, kMaxDevices>();
  const int n = device_count();
  TETHER_CHECK(index >= 0 && index < n, "cuda:", index, " does not exist (", n, " CUDA device",
               n == 1 ? "" : "s", " visible)");
  DeviceContext& ctx = (*contexts)[index];
  std::call_once(ctx.once, [&] {
    TETHER_CHECK_CUDA(cudaSetDevice(index));
    TETHER_CHECK_CUDA(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
    TETHER_CHECK_CUBLAS(cublasCreate(&ctx.cublas));
    TETHER_CHECK_CUBLAS(cublasSetStream(ctx.cublas, ctx.stream));
    TETHER_CHECK_CUDNN(cudnnCreate(&ctx.cudnn));
    TETHER_CHECK_CUDNN(cudnnSetStream(ctx.cudnn, ctx.stream));
  });
  return ctx;
}
}  // namespace

int device_count() {
  static const int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device"/"no driver" error
      return 0;
    }
    return count;
  }();
  return n;
}

DeviceGuard::DeviceGuard(int index) {
  TETHER_CHECK_CUDA(cudaGetDevice(&previous_));
  if (previous_ != index) TETHER_CHECK_CUDA(cudaSetDevice(index));
}
DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

cudaStream_t stream(int index) {
  DeviceContext& ctx = context(index);
  TETHER_CHECK_CUDA(cudaSetDevice(index));
  return ctx.stream;
}
cublasHandle_t cublas(int index) {
  DeviceContext& ctx = context(index);
  TETHER_CHECK_CUDA(cudaSetDevice(index));
  return ctx.cublas;
}
cudnnHandle_t cudnn(int index) {
  DeviceContext& ctx = context(index);
  TETHER_CHECK_CUDA(cudaSetDevice(index));
  return ctx.cudnn;
}

int device_of(const Tensor& t) {
  TETHER_CHECK(t.device().is_cuda(), "expected a CUDA tensor, got ", t.str());
  return t.device().index;
}

std::string describe_device(int device_index) {
  cudaDeviceProp prop{};
  TETHER_CHECK_CUDA(cudaGetDeviceProperties(&prop, device_index));
  char buf[320];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  return buf;
}

std::string library_versions() {
  int runtime = 0, driver = 0, cublas_version = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  cublasGetProperty(MAJOR_VERSION, &cublas_version);
  int cublas_minor = 0, cublas_patch = 0;
  cublasGetProperty(MINOR_VERSION, &cublas_minor);
  cublasGetProperty(PATCH_LEVEL, &cublas_patch);
  const size_t cudnn_version = cudnnGetVersion();  // major*10000 + minor*100 + patch (cuDNN 9)
  char buf[200];
  std::snprintf(buf, sizeof buf, "CUDA runtime %d.%d, driver %d.%d, cuBLAS %d.%d.%d, cuDNN %zu.%zu.%zu", runtime / 1000,
                runtime % 1000 / 10, driver / 1000, driver % 1000 / 10, cublas_version, cublas_minor, cublas_patch,
                cudnn_version / 10000, cudnn_version % 10000 / 100, cudnn_version % 100);
  return buf;
}

void synchronize(int device_index) { TETHER_CHECK_CUDA(cudaStreamSynchronize(stream(device_index))); }

std::string cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "cublasStatus " + std::to_string(static_cast<int>(status));
}

}  // namespace tether::cuda
