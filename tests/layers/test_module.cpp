// Module plumbing: PyTorch's dotted names and state_dict order, strict and lenient loading,
// train/eval, freezing, moving, taps.
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "layers/squeeze_excitation.h"
#include "tests/test_util.h"

using namespace tether;
using namespace tether::nn;

namespace {
// conv -> bn -> relu -> pool -> flatten -> fc, the shape of every model head.
std::shared_ptr<Sequential> tiny_net() {
  auto net = make<Sequential>();
  net->push_back(make<Conv2d>(Conv2dOptions{.in = 3, .out = 4, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(make<BatchNorm2d>(BatchNormOptions{.channels = 4}));
  net->push_back(make<ReLU>());
  net->push_back(make<AdaptiveAvgPool2d>(1));
  net->push_back(make<Flatten>());
  net->push_back(make<Linear>(LinearOptions{.in = 4, .out = 2}));
  return net;
}

std::vector<std::string> names(const NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}
}  // namespace

TEST_SUITE("layers") {
  TEST_CASE("dotted names and state_dict order follow PyTorch") {
    auto net = tiny_net();
    CHECK(names(net->named_parameters()) ==
          std::vector<std::string>{"0.weight", "1.weight", "1.bias", "5.weight", "5.bias"});
    CHECK(names(net->named_buffers()) ==
          std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"});
    CHECK(names(net->state_dict()) ==
          std::vector<std::string>{"0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                   "1.num_batches_tracked", "5.weight", "5.bias"});
    auto se = make<SqueezeExcitation>(8, 2, make<SiLU>());
    CHECK(names(se->named_parameters()) ==
          std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
    CHECK(net->submodule("5")->type_name() == "Linear");
    CHECK_THROWS_WITH_AS(net->submodule("9"), doctest::Contains("no module named '9'"), Error);
  }

  TEST_CASE("default initialisation has PyTorch's bounds") {
    manual_seed(0);
    auto conv = make<Conv2d>(Conv2dOptions{.in = 16, .out = 8, .kernel = 3});
    const double bound = 1.0 / std::sqrt(16.0 * 9.0);  // kaiming_uniform(a=sqrt(5)) = 1/sqrt(fan_in)
    for (double v : conv->weight.to_vector<double>()) CHECK(std::abs(v) <= bound);
    for (double v : conv->bias.to_vector<double>()) CHECK(std::abs(v) <= bound);
    CHECK(ops::norm(conv->weight, INFINITY) > 0.8 * bound);  // and actually spread over it
  }

  TEST_CASE("load_state_dict: strict errors name every culprit; lenient reports") {
    auto a = tiny_net(), b = tiny_net();
    std::map<std::string, Tensor> values;
    for (const auto& [n, t] : a->state_dict()) values[n] = t;
    b->load_state_dict(values);
    CHECK(b->named_parameters()[0].second.to_vector<float>() == a->named_parameters()[0].second.to_vector<float>());

    auto broken = values;
    broken.erase("1.bias");
    broken["extra.weight"] = Tensor::zeros({1});
    broken["5.weight"] = Tensor::zeros({3, 4});
    try {
      b->load_state_dict(broken);
      FAIL("strict load accepted a broken state dict");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("1.bias") != std::string::npos);
      CHECK(msg.find("extra.weight") != std::string::npos);
      CHECK(msg.find("5.weight: file [3, 4] vs model [2, 4]") != std::string::npos);
    }
    LoadReport r = b->load_state_dict(broken, /*strict=*/false);
    CHECK(r.missing == std::vector<std::string>{"1.bias"});
    CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
    CHECK(r.mismatched.size() == 1);
  }

  TEST_CASE("train/eval, freezing by prefix, zero_grad") {
    auto net = tiny_net();
    CHECK(net->is_training());
    net->eval();
    CHECK(!(*net)[1]->is_training());
    net->train();
    net->freeze("1");
    CHECK(!(*net)[1]->is_training());  // frozen BN stays in eval mode
    net->train();
    CHECK(!(*net)[1]->is_training());
    CHECK((*net)[0]->is_training());
    for (const auto& [n, t] : net->named_parameters()) CHECK(t.requires_grad() == (n.rfind("1.", 0) != 0));
    CHECK_THROWS_WITH_AS(net->freeze("nope"), doctest::Contains("no module named 'nope'"), Error);
  }

  TEST_CASE("a forward and backward through the layers; taps capture outputs and rep") {
    manual_seed(1);
    auto net = tiny_net();
    auto store = std::make_shared<TapStore>();
    net->set_taps({"2"}, store, "5");
    Tensor x = testing::randn({2, 3, 5, 5}, 3, DType::f32);
    Tensor y = (*net)(x);
    CHECK(y.shape() == Shape{2, 2});
    CHECK(store->at("2").shape() == Shape{2, 4, 5, 5});
    CHECK(store->at("rep").shape() == Shape{2, 4});
    sum(y).backward();
    for (const auto& [n, t] : net->named_parameters()) {
      CAPTURE(n);
      CHECK(t.grad().defined());
    }
    CHECK(std::dynamic_pointer_cast<BatchNorm2d>((*net)[1])->num_batches_tracked.item<int64_t>() == 1);
    net->zero_grad();
    CHECK(!net->parameters()[0].grad().defined());
  }

  TEST_CASE("StochasticDepth drops whole rows and rescales survivors; identity in eval") {
    manual_seed(5);
    auto sd = make<StochasticDepth>(0.5);
    Tensor x = Tensor::ones({64, 3, 2, 2});
    Tensor y = (*sd)(x);
    std::vector<float> v = y.to_vector<float>();
    int dropped = 0;
    for (int n = 0; n < 64; ++n) {
      const float first = v[n * 12];
      CHECK((first == 0.0f || first == 2.0f));
      for (int i = 1; i < 12; ++i) CHECK(v[n * 12 + i] == first);
      dropped += first == 0.0f;
    }
    CHECK(dropped > 16);
    CHECK(dropped < 48);
    sd->eval();
    CHECK((*sd)(x).same(x));
  }
}
