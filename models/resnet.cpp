#include "models/resnet.h"

#include "core/init.h"
#include "layers/activation.h"
#include "layers/pooling.h"

namespace tether::models {

using namespace tether::nn;

namespace {
std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return make<Conv2d>(Conv2dOptions{.in = in, .out = out, .kernel = 3, .stride = stride, .padding = 1, .bias = false});
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return make<Conv2d>(Conv2dOptions{.in = in, .out = out, .kernel = 1, .stride = stride, .bias = false});
}
std::shared_ptr<BatchNorm2d> bn(int64_t c) { return make<BatchNorm2d>(BatchNormOptions{.channels = c}); }
}  // namespace

BasicBlock::BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, ModulePtr ds)
    : conv1(register_module("conv1", conv3x3(inplanes, planes, stride))),
      bn1(register_module("bn1", bn(planes))),
      conv2(register_module("conv2", conv3x3(planes, planes))),
      bn2(register_module("bn2", bn(planes))),
      downsample(ds ? register_module("downsample", ds) : nullptr) {}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu((*bn1)((*conv1)(x)));
  out = (*bn2)((*conv2)(out));
  return relu(out + (downsample ? (*downsample)(x) : x));
}

Bottleneck::Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, ModulePtr ds)
    : conv1(register_module("conv1", conv1x1(inplanes, planes))),
      bn1(register_module("bn1", bn(planes))),
      conv2(register_module("conv2", conv3x3(planes, planes, stride))),  // v1.5: stride here
      bn2(register_module("bn2", bn(planes))),
      conv3(register_module("conv3", conv1x1(planes, planes * expansion))),
      bn3(register_module("bn3", bn(planes * expansion))),
      downsample(ds ? register_module("downsample", ds) : nullptr) {}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = relu((*bn1)((*conv1)(x)));
  out = relu((*bn2)((*conv2)(out)));
  out = (*bn3)((*conv3)(out));
  return relu(out + (downsample ? (*downsample)(x) : x));
}

ResNet::ResNet(bool bottleneck, const std::vector<int64_t>& layers, const ModelOptions& options) {
  TETHER_CHECK(layers.size() == 4, "ResNet needs 4 stages");
  const int64_t expansion = bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
  int64_t inplanes = 64;
  conv1 = register_module("conv1", make<Conv2d>(Conv2dOptions{.in = 3, .out = 64, .kernel = 7, .stride = 2,
                                                              .padding = 3, .bias = false}));
  bn1 = register_module("bn1", bn(64));
  register_module("relu", make<ReLU>());
  maxpool = register_module("maxpool", make<MaxPool2d>(PoolOptions{.kernel = 3, .stride = 2, .padding = 1}));
  auto make_layer = [&](int64_t planes, int64_t blocks, int64_t stride) {
    auto seq = make<Sequential>();
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t s = i == 0 ? stride : 1;
      ModulePtr ds;
      if (i == 0 && (stride != 1 || inplanes != planes * expansion))
        ds = make<Sequential>(std::vector<ModulePtr>{conv1x1(inplanes, planes * expansion, stride), bn(planes * expansion)});
      if (bottleneck) seq->push_back(make<Bottleneck>(inplanes, planes, s, ds));
      else seq->push_back(make<BasicBlock>(inplanes, planes, s, ds));
      inplanes = planes * expansion;
    }
    return seq;
  };
  layer1 = register_module("layer1", make_layer(64, layers[0], 1));
  layer2 = register_module("layer2", make_layer(128, layers[1], 2));
  layer3 = register_module("layer3", make_layer(256, layers[2], 2));
  layer4 = register_module("layer4", make_layer(512, layers[3], 2));
  avgpool = register_module("avgpool", make<AdaptiveAvgPool2d>(1));
  feature_dim_ = 512 * expansion;
  fc = register_module("fc", make<Linear>(LinearOptions{.in = feature_dim_, .out = options.num_classes}));
  // torchvision: kaiming_normal_(fan_out, relu) for convs; BN weight 1, bias 0 (already).
  apply([](const std::string&, Module& m) {
    if (auto* c = dynamic_cast<Conv2d*>(&m))
      init::kaiming_normal_(c->weight, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu, default_generator());
  });
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor y = (*maxpool)(relu((*bn1)((*conv1)(x))));
  y = (*layer4)((*layer3)((*layer2)((*layer1)(y))));
  y = flatten((*avgpool)(y), 1);
  return (*fc)(y);
}

void ResNet::reset_head(int64_t num_classes) {
  fc = make<Linear>(LinearOptions{.in = feature_dim_, .out = num_classes});
  replace_module("fc", fc);
}

std::vector<std::vector<std::string>> ResNet::blocks() const {
  std::vector<std::vector<std::string>> out{{"conv1", "bn1"}};
  const std::vector<std::pair<std::string, nn::ModulePtr>> stages{
      {"layer1", layer1}, {"layer2", layer2}, {"layer3", layer3}, {"layer4", layer4}};
  for (const auto& [stage, layer] : stages)
    for (const auto& [index, block] : layer->children()) out.push_back({stage + "." + index});
  return out;
}

namespace {
ModelPtr named(ModelPtr m, const char* name) {
  m->name = name;
  return m;
}
}  // namespace

ModelPtr resnet18(const ModelOptions& o) { return named(make<ResNet>(false, std::vector<int64_t>{2, 2, 2, 2}, o), "resnet18"); }
ModelPtr resnet34(const ModelOptions& o) { return named(make<ResNet>(false, std::vector<int64_t>{3, 4, 6, 3}, o), "resnet34"); }
ModelPtr resnet50(const ModelOptions& o) { return named(make<ResNet>(true, std::vector<int64_t>{3, 4, 6, 3}, o), "resnet50"); }
ModelPtr resnet101(const ModelOptions& o) { return named(make<ResNet>(true, std::vector<int64_t>{3, 4, 23, 3}, o), "resnet101"); }
ModelPtr resnet152(const ModelOptions& o) { return named(make<ResNet>(true, std::vector<int64_t>{3, 8, 36, 3}, o), "resnet152"); }

}  // namespace tether::models
