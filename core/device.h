// Where a tensor's memory lives. Moves between devices are always explicit (Tensor::to).
#pragma once
#include <cstdint>
#include <string>

namespace tether {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;  // GPU ordinal; always 0 for the CPU

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // Parses "cpu", "cuda", "cuda:1"; throws on anything else.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// TF32 on CUDA (no effect on the CPU): a float32 GEMM/convolution may round its inputs to
// TF32 (10-bit mantissa) on tensor cores. Defaults are PyTorch's: torch.backends.cudnn.allow_tf32
// = True (convolutions), torch.backends.cuda.matmul.allow_tf32 = False (GEMM). `--tf32` sets them:
// "conv" (the default), "all" (convolutions and GEMM), "none" (strict float32 everywhere).
struct CudaMath {
  bool tf32_conv = true;
  bool tf32_matmul = false;
};
CudaMath& cuda_math();
void set_tf32_mode(const std::string& mode);  // throws naming --tf32 on anything else
std::string tf32_mode();                      // the current mode's name

// True when the library was built with the CUDA back end and a GPU is visible.
bool cuda_available();
int cuda_device_count();

}  // namespace tether
