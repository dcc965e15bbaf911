// BatchNorm2d, as torch.nn.BatchNorm2d: weight (1) and bias (0), buffers running_mean (0),
// running_var (1) and num_batches_tracked; in training, batch statistics normalise and the
// running ones follow PyTorch's momentum rule with the unbiased variance. In eval mode (or
// when frozen) the running statistics normalise.
#pragma once
#include "layers/module.h"

namespace tether::nn {

struct BatchNormOptions {
  int64_t channels = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BatchNorm2d"; }

  BatchNormOptions options;
  Tensor weight, bias;                                  // undefined without affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined without tracking
};

}  // namespace tether::nn
