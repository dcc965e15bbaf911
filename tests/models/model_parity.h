// Whole-model parity against torchvision (tests/parity/ref_models.py), shared by the CPU
// suite (tests/models/test_model_parity.cpp) and the GPU one (tests/cuda/): check_model runs
// the model on `device` (the reference on the same kind of device) and compares logits, loss,
// every parameter gradient, the input gradient and the BN running statistics.
//
// Tolerances (see test_model_parity.cpp for why they are what they are): logits and loss 1e-4
// relative (‖got − want‖ / ‖want‖), gradients 1e-3 (train mode: train_grad_tol), buffers 1e-4;
// a mathematically-zero bias gradient is measured against 1e-3 of its layer's weight gradient;
// with f64 references, gradients are compared with the float64 truth.
#pragma once
#include <algorithm>
#include <map>
#include <string>

#include "autograd/engine.h"
#include "layers/dropout.h"
#include "models/registry.h"
#include "tests/parity/parity_util.h"

namespace tether::model_parity {

inline double relative_error(const Tensor& got, const Tensor& want, double floor = 0.0) {
  Tensor diff = ops::binary(ops::Binary::sub, ops::cast(got.to(Device::cpu()), DType::f64),
                            ops::cast(want.to(Device::cpu()), DType::f64));
  const double scale = std::max(ops::norm(want, 2.0), floor);
  return ops::norm(diff, 2.0) / (scale > 0 ? scale : 1.0);
}

inline void expect_relative(const std::string& what, const Tensor& got, const Tensor& want, double tol,
                            double floor = 0.0) {
  INFO(what << ": got " << got.str() << ", want " << want.str());
  REQUIRE(got.shape() == want.shape());
  const double err = relative_error(got, want, floor);
  INFO(what << ": relative error " << err << " (tolerance " << tol << ")");
  CHECK(err <= tol);
}

// train_grad_tol: the tolerance of train-mode gradients against PyTorch's float32 ones (see
// vgg16_bn in test_model_parity.cpp); eval mode is always held to 1e-3. On a CUDA device the
// reference runs on the GPU too (ref_models.py --device cuda, TF32 off: run tether with
// --tf32 none to match).
inline void check_model(const std::string& name, int64_t classes, int64_t size, int64_t batch, const std::string& modes,
                        bool f64 = false, double train_grad_tol = 1e-3, Device device = Device::cpu()) {
  CAPTURE(name);
  std::string args = name + " " + std::to_string(classes) + " " + std::to_string(size) + " " + std::to_string(batch) +
                     " " + modes + (f64 ? " f64" : "");
  if (device.is_cuda()) args += " --device " + device.str();
  auto ref = parity::reference("ref_models.py", args);
  if (!ref) return;
  models::ModelPtr model = models::create_model(name, {.num_classes = classes});
  model->to(device);
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
    Tensor x = ref->at("input").to(device).clone().set_requires_grad();
    Tensor logits = (*model)(x);
    Tensor loss = cross_entropy(logits, ref->at("target").to(device));
    CHECK(logits.device() == device);
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

}  // namespace tether::model_parity
