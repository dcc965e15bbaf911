#include "tools/train/device.h"

namespace tether::train {

Device resolve_device(const std::string& text) {
  Device device;
  try {
    device = Device::parse(text);
  } catch (const Error&) {
    TETHER_FAIL("--device must be cpu, cuda or cuda:N, got '", text, "'");
  }
  if (device.is_cpu()) return device;
#ifndef TETHER_WITH_CUDA
  TETHER_FAIL("--device ", text, ": this tether was built without the CUDA back end (configure with -DTETHER_CUDA=ON "
              "on a machine with the CUDA toolkit and cuDNN)");
#endif
  const int n = cuda_device_count();
  TETHER_CHECK(n > 0, "--device ", text, ": no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  TETHER_CHECK(device.index < n, "--device ", text, ": only ", n, " CUDA device", n == 1 ? "" : "s",
               " visible (cuda:0", n > 1 ? " .. cuda:" + std::to_string(n - 1) : std::string(), ")");
  return device;
}

Device setup_device(const std::string& device, const std::string& tf32) {
  set_tf32_mode(tf32);
  return resolve_device(device);
}

DeviceBatch to_device(const data::Batch& batch, Device device) {
  return {batch.images.to(device), batch.labels.to(device)};
}

data::LoaderOptions pinned_for(data::LoaderOptions options, Device device) {
  if (device.is_cuda()) options.allocate = [](const Shape& shape, DType dtype) { return Tensor::empty_pinned(shape, dtype); };
  return options;
}

}  // namespace tether::train
