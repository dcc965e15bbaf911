// SPEC 5: the source network of kd and delta — a frozen copy of the model at w0, in eval mode
// (BN running statistics, no dropout), run under no-grad on the same (augmented) batch as the
// trained model. Its tap outputs are computed once per step and handed to the caller, who
// frees them after use.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "models/model.h"

namespace tether::reg {

class SourceNetwork {
 public:
  // A new instance of `model`'s architecture holding `model`'s current parameters and buffers
  // (construct it while the model is at w0: after --weights, before --init or any step),
  // frozen and in eval mode, recording `taps` (module names; each must exist).
  SourceNetwork(const models::Model& model, const std::vector<std::string>& taps);
  // The tap outputs for `images` (no graph; nothing kept here).
  nn::TapStore features(const Tensor& images);
  // Channels (dimension 1) of every tap's output, from one small forward (32x32, batch 1).
  std::map<std::string, int64_t> channel_counts();
  models::Model& model() { return *net_; }

 private:
  models::ModelPtr net_;
  std::shared_ptr<nn::TapStore> store_;
};

// Throws naming the tap (and the model) when a name in `taps` is not a module of `model`.
void check_tap_names(const models::Model& model, const std::vector<std::string>& taps);

}  // namespace tether::reg
