#include "models/efficientnet.h"

#include <cmath>

#include "core/init.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/pooling.h"
#include "layers/squeeze_excitation.h"

namespace tether::models {

using namespace tether::nn;

namespace {

// torchvision's _make_divisible: round to a multiple of 8, never below 90% of v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t new_v = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (new_v < 0.9 * v) new_v += divisor;
  return new_v;
}

// Conv2dNormActivation: children "0" conv (no bias), "1" BN, "2" SiLU (when activated).
std::shared_ptr<Sequential> conv_bn_act(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                        bool activation) {
  auto seq = make<Sequential>();
  seq->push_back(make<Conv2d>(Conv2dOptions{.in = in, .out = out, .kernel = kernel, .stride = stride,
                                            .padding = (kernel - 1) / 2, .groups = groups, .bias = false}));
  seq->push_back(make<BatchNorm2d>(BatchNormOptions{.channels = out}));
  if (activation) seq->push_back(make<SiLU>());
  return seq;
}

}  // namespace

MBConv::MBConv(const MBConvConfig& c, double stochastic_depth_prob) {
  TETHER_CHECK(c.stride == 1 || c.stride == 2, "MBConv: illegal stride ", c.stride);
  use_res_connect = c.stride == 1 && c.input_channels == c.out_channels;
  block = register_module("block", make<Sequential>());
  const int64_t expanded = make_divisible(c.input_channels * c.expand_ratio);
  if (expanded != c.input_channels) block->push_back(conv_bn_act(c.input_channels, expanded, 1, 1, 1, true));
  block->push_back(conv_bn_act(expanded, expanded, c.kernel, c.stride, expanded, true));  // depthwise
  const int64_t squeeze = std::max<int64_t>(1, c.input_channels / 4);
  block->push_back(make<SqueezeExcitation>(expanded, squeeze, make<SiLU>()));
  block->push_back(conv_bn_act(expanded, c.out_channels, 1, 1, 1, false));  // project
  stochastic_depth = register_module("stochastic_depth", make<StochasticDepth>(stochastic_depth_prob));
}

Tensor MBConv::forward(const Tensor& x) {
  Tensor y = (*block)(x);
  if (use_res_connect) y = (*stochastic_depth)(y) + x;
  return y;
}

EfficientNet::EfficientNet(double width_mult, double depth_mult, double dropout, const ModelOptions& options) {
  // B0's stages: expand ratio, kernel, stride, in, out, layers (torchvision's _efficientnet_conf).
  std::vector<MBConvConfig> setting = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                                       {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                                       {6, 3, 1, 192, 320, 1}};
  for (MBConvConfig& c : setting) {
    c.input_channels = make_divisible(c.input_channels * width_mult);
    c.out_channels = make_divisible(c.out_channels * width_mult);
    c.num_layers = static_cast<int64_t>(std::ceil(c.num_layers * depth_mult));
  }
  features = register_module("features", make<Sequential>());
  features->push_back(conv_bn_act(3, setting[0].input_channels, 3, 2, 1, true));
  int64_t total_blocks = 0, block_id = 0;
  for (const MBConvConfig& c : setting) total_blocks += c.num_layers;
  const double stochastic_depth_prob = 0.2;
  for (const MBConvConfig& c : setting) {
    auto stage = make<Sequential>();
    for (int64_t i = 0; i < c.num_layers; ++i) {
      MBConvConfig b = c;
      if (i > 0) b.input_channels = b.out_channels, b.stride = 1;
      const double sd = stochastic_depth_prob * static_cast<double>(block_id) / static_cast<double>(total_blocks);
      stage->push_back(make<MBConv>(b, sd));
      ++block_id;
    }
    features->push_back(stage);
  }
  const int64_t last_in = setting.back().out_channels;
  last_channels_ = 4 * last_in;
  features->push_back(conv_bn_act(last_in, last_channels_, 1, 1, 1, true));
  avgpool = register_module("avgpool", make<AdaptiveAvgPool2d>(1));
  classifier = register_module("classifier", make<Sequential>(std::vector<ModulePtr>{
      make<Dropout>(dropout), make<Linear>(LinearOptions{.in = last_channels_, .out = options.num_classes})}));
  // torchvision: convs kaiming_normal_(fan_out) (gain for leaky_relu a=0, i.e. sqrt(2)),
  // zero bias; linears U(-1/sqrt(out), 1/sqrt(out)), zero bias.
  apply([](const std::string&, Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::fan_out, init::Nonlinearity::leaky_relu, default_generator());
      if (c->bias.defined()) init::zeros_(c->bias);
    } else if (auto* l = dynamic_cast<Linear*>(&m)) {
      const double range = 1.0 / std::sqrt(static_cast<double>(l->options.out));
      init::uniform_(l->weight, -range, range, default_generator());
      init::zeros_(l->bias);
    }
  });
}

Tensor EfficientNet::forward(const Tensor& x) {
  Tensor y = flatten((*avgpool)((*features)(x)), 1);
  return (*classifier)(y);
}

void EfficientNet::reset_head(int64_t num_classes) {
  classifier->set(1, make<Linear>(LinearOptions{.in = last_channels_, .out = num_classes}));
}

std::vector<std::vector<std::string>> EfficientNet::blocks() const {
  const size_t last = features->size() - 1;
  std::vector<std::vector<std::string>> out{{"features.0"}};
  for (size_t s = 1; s < last; ++s)
    for (const auto& [index, block] : (*features)[s]->children())
      out.push_back({"features." + std::to_string(s) + "." + index});
  out.push_back({"features." + std::to_string(last)});
  return out;
}

namespace {
ModelPtr build(double w, double d, double p, const ModelOptions& o, const char* name) {
  ModelPtr m = make<EfficientNet>(w, d, p, o);
  m->name = name;
  return m;
}
}  // namespace

ModelPtr efficientnet_b0(const ModelOptions& o) { return build(1.0, 1.0, 0.2, o, "efficientnet_b0"); }
ModelPtr efficientnet_b1(const ModelOptions& o) { return build(1.0, 1.1, 0.2, o, "efficientnet_b1"); }
ModelPtr efficientnet_b2(const ModelOptions& o) { return build(1.1, 1.2, 0.3, o, "efficientnet_b2"); }
ModelPtr efficientnet_b3(const ModelOptions& o) { return build(1.2, 1.4, 0.3, o, "efficientnet_b3"); }

}  // namespace tether::models
