// Pretrained weights: safetensors files under torchvision's names, or timm's (mapped here),
// loaded by name into a model (SPEC 1 and 9).
#pragma once
#include <map>
#include <string>

#include "models/model.h"

namespace tether::models {

struct WeightsReport {
  std::string format;        // "torchvision" or "timm"
  bool head_loaded = false;  // false: the head kept its fresh init (shape differs, or absent)
  std::vector<std::string> notes;  // what was tolerated (e.g. absent num_batches_tracked)
};

// timm -> torchvision names (and layouts: VGG's pre_logits convs become linear weights).
// Names already in torchvision form pass through. `format` receives which form was found.
std::map<std::string, Tensor> to_torchvision_names(const std::map<std::string, Tensor>& tensors,
                                                   const Model& model, std::string* format = nullptr);

// Loads `path` into `model`. Every non-head parameter and buffer must be present with the
// right shape and no unknown tensor may remain, else one error lists every culprit by name.
// The head (SPEC 1's S̄) is loaded only when its shape matches (e.g. same --num-classes).
// BN's num_batches_tracked may be absent (timm checkpoints often lack it).
WeightsReport load_weights(Model& model, const std::string& path);
WeightsReport load_weights(Model& model, const std::map<std::string, Tensor>& tensors, const std::string& origin);

}  // namespace tether::models
