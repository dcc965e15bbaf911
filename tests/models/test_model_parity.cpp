// Whole models against torchvision: same weights, same input; logits and loss within 1e-4
// relative error (‖got − want‖ / ‖want‖), every parameter gradient and the input gradient
// within 1e-3, BN running statistics after a train forward within 1e-4, in eval and train
// modes.
//
// Two refinements keep the check honest where float32 itself is the limit:
// - A gradient that is mathematically zero (a conv bias or BN shift feeding a train-mode BN,
//   which removes per-channel constants) is rounding noise in both frameworks; its error is
//   measured against 1e-3 of the norm of the same layer's weight gradient.
// - With f64 references (resnet50 in train mode), tether's float32 gradients are compared with
//   the float64 truth, with tolerance max(2e-2, 3 x PyTorch's own float32 error). Measured
//   here: one ReLU whose float32 pre-activation (|x| < 1e-4) lands on the other side of zero
//   than in float64, out of 65,536 in layer4.2, moves every gradient below it by ~1% (PyTorch's
//   float32 run happened to have none). Defects show as errors of order 1, far above that.
#include "autograd/engine.h"
#include "layers/dropout.h"
#include "models/registry.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

double relative_error(const Tensor& got, const Tensor& want, double floor = 0.0) {
  Tensor diff = ops::binary(ops::Binary::sub, ops::cast(got, DType::f64), ops::cast(want, DType::f64));
  const double scale = std::max(ops::norm(want, 2.0), floor);
  return ops::norm(diff, 2.0) / (scale > 0 ? scale : 1.0);
}

void expect_relative(const std::string& what, const Tensor& got, const Tensor& want, double tol, double floor = 0.0) {
  INFO(what << ": got " << got.str() << ", want " << want.str());
  REQUIRE(got.shape() == want.shape());
  const double err = relative_error(got, want, floor);
  INFO(what << ": relative error " << err << " (tolerance " << tol << ")");
  CHECK(err <= tol);
}

// train_grad_tol: the tolerance of train-mode gradients against PyTorch's float32 ones (see
// vgg16_bn below); eval mode is always held to 1e-3.
void check_model(const std::string& name, int64_t classes, int64_t size, int64_t batch, const std::string& modes,
                 bool f64 = false, double train_grad_tol = 1e-3) {
  CAPTURE(name);
  auto ref = parity::reference("ref_models.py", name + " " + std::to_string(classes) + " " + std::to_string(size) +
                                                    " " + std::to_string(batch) + " " + modes + (f64 ? " f64" : ""));
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
    std::map<std::string, Tensor> grads = {{"input", x.grad()}};
    for (const auto& [n, p] : model->named_parameters()) {
      REQUIRE_MESSAGE(p.grad().defined(), n, " received no gradient");
      grads[n] = p.grad();
    }
    for (const auto& [n, g] : grads) {
      const std::string key = mode + ".grad." + n;
      double floor = 0.0;  // for mathematically-zero gradients: 1e-3 of the layer's weight gradient
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0)
        floor = 1e-3 * ops::norm(ref->at(mode + ".grad." + n.substr(0, n.size() - 5) + ".weight"), 2.0);
      if (f64) {
        const Tensor& truth = ref->at(mode + ".grad64." + n);
        const double torch_error = relative_error(ref->at(key), truth, floor);
        expect_relative(name + " grad." + n + " vs float64", g, truth, std::max(2e-2, 3 * torch_error), floor);
      } else {
        expect_relative(name + " grad." + n, g, ref->at(key), mode == "train" ? train_grad_tol : 1e-3, floor);
      }
    }
    if (mode == "train")
      for (const auto& [n, b] : model->named_buffers()) {
        if (b.dtype() == DType::i64) CHECK(b.item<int64_t>() == ref->at("train.state." + n).item<int64_t>());
        else expect_relative(name + " " + n, b, ref->at("train.state." + n), 1e-4);
      }
  }
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("resnet18 matches torchvision (eval and train)") { check_model("resnet18", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet50 matches torchvision (eval and train)") { check_model("resnet50", 10, 128, 2, "eval,train", /*f64=*/true); }
  // vgg16_bn at 32x32 ends in 2x2 maps: train-mode BN over 8 values per channel, where a
  // single ReLU flip moves float32 gradients by a few percent (see the top of this file; a
  // float64 reference for VGG would cost gigabytes). Its train-mode gradients are held to 5e-2;
  // the same BN/ReLU/conv backward is held to 1e-3 in eval mode here and in the other models.
  TEST_CASE("vgg16_bn matches torchvision (eval and train)") {
    check_model("vgg16_bn", 10, 32, 2, "eval,train", /*f64=*/false, /*train_grad_tol=*/5e-2);
  }
  TEST_CASE("efficientnet_b0 matches torchvision (eval and train)") { check_model("efficientnet_b0", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet18 at 224x224 with 1000 classes matches torchvision (eval)") { check_model("resnet18", 1000, 224, 1, "eval"); }
}
