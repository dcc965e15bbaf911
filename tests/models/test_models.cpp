// The model zoo's structure against torchvision: parameter, buffer and state-dict entry
// counts (read off torchvision 0.14), heads, taps, any input size, head replacement.
#include "autograd/grad_mode.h"
#include "models/registry.h"
#include "tests/test_util.h"

using namespace tether;

TEST_SUITE("models") {
  TEST_CASE("every registered model has torchvision's parameter, buffer and state_dict counts") {
    struct Expected {
      const char* name;
      int64_t params, buffers;
      size_t entries;
    };
    const Expected expected[] = {
        {"resnet18", 11689512, 9620, 122},         {"resnet34", 21797672, 17060, 218},
        {"resnet50", 25557032, 53173, 320},        {"resnet101", 44549160, 105448, 626},
        {"resnet152", 60192808, 151579, 932},      {"vgg11", 132863336, 0, 22},
        {"vgg11_bn", 132868840, 5512, 62},         {"vgg13", 133047848, 0, 26},
        {"vgg13_bn", 133053736, 5898, 76},         {"vgg16", 138357544, 0, 32},
        {"vgg16_bn", 138365992, 8461, 97},         {"vgg19", 143667240, 0, 38},
        {"vgg19_bn", 143678248, 11024, 118},       {"efficientnet_b0", 5288548, 42065, 360},
        {"efficientnet_b1", 7794184, 62117, 508},  {"efficientnet_b2", 9109994, 67637, 508},
        {"efficientnet_b3", 12233232, 87374, 574},
    };
    CHECK(models::model_names().size() == std::size(expected));
    for (const Expected& e : expected) {
      CAPTURE(e.name);
      models::ModelPtr m = models::create_model(e.name);
      int64_t params = 0, buffers = 0;
      for (const auto& [n, t] : m->named_parameters()) params += t.numel();
      for (const auto& [n, t] : m->named_buffers()) buffers += t.numel();
      CHECK(params == e.params);
      CHECK(buffers == e.buffers);
      CHECK(m->state_dict().size() == e.entries);
      CHECK(m->num_classes() == 1000);
      CHECK(m->name == e.name);
      for (const std::string& tap : m->default_taps()) CHECK_NOTHROW(m->submodule(tap));
    }
    CHECK_THROWS_WITH_AS(models::create_model("resnet9"), doctest::Contains("unknown model 'resnet9'"), Error);
  }

  TEST_CASE("heads, reset_head and any input size") {
    manual_seed(0);
    for (const char* name : {"resnet18", "vgg11_bn", "efficientnet_b0"}) {
      CAPTURE(name);
      models::ModelPtr m = models::create_model(name, {.num_classes = 7});
      CHECK(m->num_classes() == 7);
      m->reset_head(3);
      CHECK(m->num_classes() == 3);
      m->eval();
      NoGradGuard no_grad;
      for (int64_t size : {32, 45}) {
        Tensor x = testing::randn({2, 3, size, size}, 1, DType::f32);
        CHECK((*m)(x).shape() == Shape{2, 3});
      }
    }
  }

  TEST_CASE("VGG taps are the ReLUs before each max-pool; rep is the head's input") {
    models::ModelPtr m = models::create_model("vgg11");
    CHECK(m->default_taps() == std::vector<std::string>{"features.1", "features.4", "features.9", "features.14", "features.19"});
    CHECK(m->head_name() == "classifier.6");
    auto store = std::make_shared<nn::TapStore>();
    m->set_taps(m->default_taps(), store, m->head_name());
    m->eval();
    NoGradGuard no_grad;
    (*m)(testing::randn({1, 3, 32, 32}, 2, DType::f32));
    CHECK(store->at("rep").shape() == Shape{1, 4096});
    CHECK(store->at("features.19").shape() == Shape{1, 512, 2, 2});
  }
}
