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
  int64_t num_classes() const;
  std::string name;  // registry name, e.g. "resnet50"
};

using ModelPtr = std::shared_ptr<Model>;

}  // namespace tether::models
