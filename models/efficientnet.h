// EfficientNet-B0..B3 (torchvision.models.efficientnet, v1): MBConv blocks with
// squeeze-excitation and stochastic depth, torchvision's names (features.S.B.block.K...),
// width/depth scaling rules and initialisation.
#pragma once
#include "layers/sequential.h"
#include "layers/linear.h"
#include "models/model.h"

namespace tether::models {

struct MBConvConfig {
  double expand_ratio;
  int64_t kernel, stride, input_channels, out_channels, num_layers;
};

class MBConv : public nn::Module {
 public:
  MBConv(const MBConvConfig& config, double stochastic_depth_prob);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MBConv"; }
  std::shared_ptr<nn::Sequential> block;
  nn::ModulePtr stochastic_depth;
  bool use_res_connect = false;
};

class EfficientNet : public Model {
 public:
  EfficientNet(double width_mult, double depth_mult, double dropout, const ModelOptions& options);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "EfficientNet"; }
  std::string head_name() const override { return "classifier.1"; }
  std::vector<std::string> default_taps() const override {
    return {"features.2", "features.3", "features.5", "features.7"};
  }
  void reset_head(int64_t num_classes) override;
  std::vector<std::vector<std::string>> blocks() const override;

  std::shared_ptr<nn::Sequential> features;
  nn::ModulePtr avgpool;
  std::shared_ptr<nn::Sequential> classifier;

 private:
  int64_t last_channels_ = 0;
};

ModelPtr efficientnet_b0(const ModelOptions& o = {});
ModelPtr efficientnet_b1(const ModelOptions& o = {});
ModelPtr efficientnet_b2(const ModelOptions& o = {});
ModelPtr efficientnet_b3(const ModelOptions& o = {});

}  // namespace tether::models
