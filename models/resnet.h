// ResNet v1.5 (torchvision.models.resnet): resnet18/34 (BasicBlock), resnet50/101/152
// (Bottleneck, stride on the 3x3 conv). torchvision's module names and initialisation.
#pragma once
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "models/model.h"

namespace tether::models {

class BasicBlock : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, nn::ModulePtr downsample);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  // Declared in registration order (= PyTorch's state_dict order).
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::Conv2d> conv2;
  std::shared_ptr<nn::BatchNorm2d> bn2;
  nn::ModulePtr downsample;  // null when the shapes already agree
};

class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, nn::ModulePtr downsample);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::shared_ptr<nn::Conv2d> conv2;
  std::shared_ptr<nn::BatchNorm2d> bn2;
  std::shared_ptr<nn::Conv2d> conv3;
  std::shared_ptr<nn::BatchNorm2d> bn3;
  nn::ModulePtr downsample;
};

class ResNet : public Model {
 public:
  // bottleneck: Bottleneck blocks (resnet50+) or BasicBlock; layers: blocks per stage.
  ResNet(bool bottleneck, const std::vector<int64_t>& layers, const ModelOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }
  std::string head_name() const override { return "fc"; }
  std::vector<std::string> default_taps() const override { return {"layer1", "layer2", "layer3", "layer4"}; }
  void reset_head(int64_t num_classes) override;
  std::vector<std::vector<std::string>> blocks() const override;

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  nn::ModulePtr maxpool, layer1, layer2, layer3, layer4, avgpool;
  std::shared_ptr<nn::Linear> fc;

 private:
  int64_t feature_dim_ = 0;
};

ModelPtr resnet18(const ModelOptions& o = {});
ModelPtr resnet34(const ModelOptions& o = {});
ModelPtr resnet50(const ModelOptions& o = {});
ModelPtr resnet101(const ModelOptions& o = {});
ModelPtr resnet152(const ModelOptions& o = {});

}  // namespace tether::models
