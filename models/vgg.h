// VGG (torchvision.models.vgg): vgg11/13/16/19 and their _bn variants. features.N /
// classifier.N names as torchvision; avgpool to 7x7 so any input size >= 32 works.
#pragma once
#include "layers/linear.h"
#include "layers/sequential.h"
#include "models/model.h"

namespace tether::models {

class VGG : public Model {
 public:
  // config: channels per conv, 0 = max-pool ("M" in torchvision's cfgs).
  VGG(const std::vector<int64_t>& config, bool batch_norm, const ModelOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "VGG"; }
  std::string head_name() const override { return "classifier.6"; }
  // SPEC 5: the outputs of the last ReLU before each max-pool.
  std::vector<std::string> default_taps() const override { return taps_; }
  void reset_head(int64_t num_classes) override;
  std::vector<std::vector<std::string>> blocks() const override;

  std::shared_ptr<nn::Sequential> features;
  nn::ModulePtr avgpool;
  std::shared_ptr<nn::Sequential> classifier;

 private:
  std::vector<std::string> taps_;
};

ModelPtr vgg11(const ModelOptions& o = {});
ModelPtr vgg13(const ModelOptions& o = {});
ModelPtr vgg16(const ModelOptions& o = {});
ModelPtr vgg19(const ModelOptions& o = {});
ModelPtr vgg11_bn(const ModelOptions& o = {});
ModelPtr vgg13_bn(const ModelOptions& o = {});
ModelPtr vgg16_bn(const ModelOptions& o = {});
ModelPtr vgg19_bn(const ModelOptions& o = {});

}  // namespace tether::models
