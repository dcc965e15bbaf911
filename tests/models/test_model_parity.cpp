// Whole models against torchvision (issue: models exact against PyTorch): same weights, same
// input; logits and loss within 1e-4 relative error (‖got − want‖ / ‖want‖), every parameter
// gradient and the input gradient within 1e-3, BN running statistics after a train forward
// within 1e-4, in eval and train modes.
#include "autograd/engine.h"
#include "layers/dropout.h"
#include "models/registry.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

double relative_error(const Tensor& got, const Tensor& want) {
  Tensor diff = ops::binary(ops::Binary::sub, ops::cast(got, DType::f64), ops::cast(want, DType::f64));
  const double scale = ops::norm(want, 2.0);
  return ops::norm(diff, 2.0) / (scale > 0 ? scale : 1.0);
}

void expect_relative(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  INFO(what << ": got " << got.str() << ", want " << want.str());
  REQUIRE(got.shape() == want.shape());
  const double err = relative_error(got, want);
  INFO(what << ": relative error " << err << " (tolerance " << tol << ")");
  CHECK(err <= tol);
}

void check_model(const std::string& name, int64_t classes, int64_t size, int64_t batch, const std::string& modes) {
  CAPTURE(name);
  auto ref = parity::reference("ref_models.py", name + " " + std::to_string(classes) + " " + std::to_string(size) +
                                                    " " + std::to_string(batch) + " " + modes);
  if (!ref) return;
  models::ModelPtr model = models::create_model(name, {.num_classes = classes});
  std::map<std::string, Tensor> weights;
  for (const auto& [n, t] : model->state_dict()) weights[n] = ref->at("w." + n);
  for (const std::string mode : {"eval", "train"}) {
    if (modes.find(mode) == std::string::npos) continue;
    CAPTURE(mode);
    model->load_state_dict(weights);
    model->train(mode == "train");
    model->apply([](const std::string&, nn::Module& m) {  // dropout and stochastic depth off
      if (dynamic_cast<nn::Dropout*>(&m) || dynamic_cast<nn::StochasticDepth*>(&m)) m.eval();
    });
    model->zero_grad();
    Tensor x = ref->at("input").clone().set_requires_grad();
    Tensor logits = (*model)(x);
    Tensor loss = cross_entropy(logits, ref->at("target"));
    expect_relative(name + " logits", logits, ref->at(mode + ".logits"), 1e-4);
    expect_relative(name + " loss", reshape(loss, {1}), ref->at(mode + ".loss"), 1e-4);
    loss.backward();
    expect_relative(name + " grad.input", x.grad(), ref->at(mode + ".grad.input"), 1e-3);
    for (const auto& [n, p] : model->named_parameters()) {
      REQUIRE_MESSAGE(p.grad().defined(), n, " received no gradient");
      expect_relative(name + " grad." + n, p.grad(), ref->at(mode + ".grad." + n), 1e-3);
    }
    if (mode == "train")
      for (const auto& [n, b] : model->named_buffers()) expect_relative(name + " " + n, b, ref->at("train.state." + n), 1e-4);
  }
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("resnet18 matches torchvision (eval and train)") { check_model("resnet18", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet50 matches torchvision (eval and train)") { check_model("resnet50", 10, 64, 2, "eval,train"); }
  TEST_CASE("vgg16_bn matches torchvision (eval and train)") { check_model("vgg16_bn", 10, 32, 2, "eval,train"); }
  TEST_CASE("efficientnet_b0 matches torchvision (eval and train)") { check_model("efficientnet_b0", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet18 at 224x224 with 1000 classes matches torchvision (eval)") { check_model("resnet18", 1000, 224, 1, "eval"); }
}
