// Model: a Module that is a whole image classifier, knowing its classifier head (SPEC 1's S̄),
// its default feature taps (SPEC 5) and where `rep` (the head's input) comes from.
#pragma once
#include "layers/module.h"

namespace tether::models {

struct ModelOptions {
  int64_t num_classes = 1000;
};

class Model : public nn::Module {
 public:
  // Dotted name of the final Linear: "fc" (ResNet), "classifier.6" (VGG), "classifier.1" (EfficientNet).
  virtual std::string head_name() const = 0;
  // SPEC 5's default taps for KD/DELTA.
  virtual std::vector<std::string> default_taps() const = 0;
  // Replaces the head by a fresh Linear with PyTorch's default init (a new task).
  virtual void reset_head(int64_t num_classes) = 0;
  // The architecture's blocks from the input on, each a list of module names; `--freeze-blocks N`
  // freezes the first N (the L2-SP paper's freezing study). ResNet: the stem (conv1, bn1), then
  // every residual block (layer1.0, …); VGG: every conv layer (with its BN), then fc6 and fc7
  // (classifier.0, classifier.3); EfficientNet: the stem (features.0), every MBConv block
  // (features.1.0, …) and the last 1x1 conv (features.8). The head is never a block.
  virtual std::vector<std::vector<std::string>> blocks() const = 0;
  int64_t num_classes() const;
  std::string name;  // registry name, e.g. "resnet50"
};

using ModelPtr = std::shared_ptr<Model>;

// Freezes the first `count` blocks of model.blocks() (Module::freeze on each of their modules);
// throws naming the model and its block count when there are fewer. Returns the modules frozen.
std::vector<std::string> freeze_blocks(Model& model, int64_t count);

}  // namespace tether::models
