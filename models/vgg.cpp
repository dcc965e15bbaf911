#include "models/vgg.h"

#include "core/init.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/pooling.h"

namespace tether::models {

using namespace tether::nn;

VGG::VGG(const std::vector<int64_t>& config, bool batch_norm, const ModelOptions& options) {
  features = register_module("features", make<Sequential>());
  int64_t in = 3;
  for (int64_t v : config) {
    if (v == 0) {
      taps_.push_back("features." + std::to_string(features->size() - 1));  // the ReLU before the pool
      features->push_back(make<MaxPool2d>(PoolOptions{.kernel = 2, .stride = 2}));
      continue;
    }
    features->push_back(make<Conv2d>(Conv2dOptions{.in = in, .out = v, .kernel = 3, .padding = 1}));
    if (batch_norm) features->push_back(make<BatchNorm2d>(BatchNormOptions{.channels = v}));
    features->push_back(make<ReLU>());
    in = v;
  }
  avgpool = register_module("avgpool", make<AdaptiveAvgPool2d>(7));
  classifier = register_module("classifier", make<Sequential>(std::vector<ModulePtr>{
      make<Linear>(LinearOptions{.in = 512 * 7 * 7, .out = 4096}), make<ReLU>(), make<Dropout>(0.5),
      make<Linear>(LinearOptions{.in = 4096, .out = 4096}), make<ReLU>(), make<Dropout>(0.5),
      make<Linear>(LinearOptions{.in = 4096, .out = options.num_classes})}));
  // torchvision: convs kaiming_normal_(fan_out, relu) with zero bias; linears N(0, 0.01), zero bias.
  apply([](const std::string&, Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu, default_generator());
      if (c->bias.defined()) init::zeros_(c->bias);
    } else if (auto* l = dynamic_cast<Linear*>(&m)) {
      init::normal_(l->weight, 0.0, 0.01, default_generator());
      init::zeros_(l->bias);
    }
  });
}

Tensor VGG::forward(const Tensor& x) {
  Tensor y = flatten((*avgpool)((*features)(x)), 1);
  return (*classifier)(y);
}

void VGG::reset_head(int64_t num_classes) {
  classifier->set(6, make<Linear>(LinearOptions{.in = 4096, .out = num_classes}));
}

std::vector<std::vector<std::string>> VGG::blocks() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& [index, m] : features->children()) {
    if (m->type_name() == "Conv2d") out.push_back({"features." + index});
    else if (m->type_name() == "BatchNorm2d") out.back().push_back("features." + index);  // the conv's BN
  }
  out.push_back({"classifier.0"});  // fc6
  out.push_back({"classifier.3"});  // fc7
  return out;
}

namespace {
const std::vector<int64_t> kA = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int64_t> kB = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int64_t> kD = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
const std::vector<int64_t> kE = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                                 512, 512, 512, 512, 0,   512, 512, 512, 512, 0};
ModelPtr build(const std::vector<int64_t>& cfg, bool bn, const ModelOptions& o, const char* name) {
  ModelPtr m = make<VGG>(cfg, bn, o);
  m->name = name;
  return m;
}
}  // namespace

ModelPtr vgg11(const ModelOptions& o) { return build(kA, false, o, "vgg11"); }
ModelPtr vgg13(const ModelOptions& o) { return build(kB, false, o, "vgg13"); }
ModelPtr vgg16(const ModelOptions& o) { return build(kD, false, o, "vgg16"); }
ModelPtr vgg19(const ModelOptions& o) { return build(kE, false, o, "vgg19"); }
ModelPtr vgg11_bn(const ModelOptions& o) { return build(kA, true, o, "vgg11_bn"); }
ModelPtr vgg13_bn(const ModelOptions& o) { return build(kB, true, o, "vgg13_bn"); }
ModelPtr vgg16_bn(const ModelOptions& o) { return build(kD, true, o, "vgg16_bn"); }
ModelPtr vgg19_bn(const ModelOptions& o) { return build(kE, true, o, "vgg19_bn"); }

}  // namespace tether::models
