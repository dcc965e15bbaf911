#include "layers/batch_norm.h"

#include "core/ops.h"

namespace tether::nn {

BatchNorm2d::BatchNorm2d(const BatchNormOptions& o) : options(o) {
  TETHER_CHECK(o.channels > 0, "BatchNorm2d: channels must be positive, got ", o.channels);
  if (o.affine) {
    weight = register_parameter("weight", Tensor::ones({o.channels}));
    bias = register_parameter("bias", Tensor::zeros({o.channels}));
  }
  if (o.track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({o.channels}));
    running_var = register_buffer("running_var", Tensor::ones({o.channels}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  TETHER_CHECK(x.dim() == 4 && x.size(1) == options.channels, "BatchNorm2d(", options.channels,
               "): expected input [N, ", options.channels, ", H, W], got ", shape_str(x.shape()));
  const bool batch_stats = training_ || !options.track_running_stats;
  // Counted where the buffer lives (on a GPU, reading it back would stall every layer).
  if (training_ && options.track_running_stats) num_batches_tracked.copy_(ops::add_scalar(num_batches_tracked, 1.0));
  // Running statistics are read in eval mode and updated in training; without tracking,
  // batch statistics are used in both modes and nothing is updated.
  return batch_norm(x, weight, bias, batch_stats && !training_ ? Tensor() : running_mean,
                    batch_stats && !training_ ? Tensor() : running_var, batch_stats, options.momentum, options.eps);
}

}  // namespace tether::nn
