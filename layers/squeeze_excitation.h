// SqueezeExcitation, as torchvision.ops.SqueezeExcitation: x * sigmoid(fc2(act(fc1(avgpool(x))))),
// with children avgpool, fc1, fc2, activation, scale_activation (torchvision's names).
#pragma once
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/pooling.h"

namespace tether::nn {

class SqueezeExcitation : public Module {
 public:
  // activation: ReLU by default in torchvision; EfficientNet passes SiLU.
  SqueezeExcitation(int64_t input_channels, int64_t squeeze_channels, ModulePtr activation = nullptr)
      : avgpool(register_module("avgpool", make<AdaptiveAvgPool2d>(1))),
        fc1(register_module("fc1", make<Conv2d>(Conv2dOptions{.in = input_channels, .out = squeeze_channels}))),
        fc2(register_module("fc2", make<Conv2d>(Conv2dOptions{.in = squeeze_channels, .out = input_channels}))),
        activation(register_module("activation", activation ? activation : make<ReLU>())),
        scale_activation(register_module("scale_activation", make<Sigmoid>())) {}

  Tensor forward(const Tensor& x) override {
    Tensor scale = (*avgpool)(x);
    scale = (*fc2)((*activation)((*fc1)(scale)));
    return x * (*scale_activation)(scale);
  }
  std::string type_name() const override { return "SqueezeExcitation"; }

  ModulePtr avgpool, fc1, fc2, activation, scale_activation;
};

}  // namespace tether::nn
