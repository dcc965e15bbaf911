// Pooling and batch norm against PyTorch (f32): outputs, gradients (input, weight, bias),
// max-pool indices and the running statistics after a training step, on random shapes and
// parameters drawn by ref_pool_bn.py.
// Tolerances (relative and absolute, |got - want| <= atol + rtol |want|): pooling 1e-6
// (max pooling is exact; averages differ in summation order, double here and float in
// PyTorch: observed <= 7e-8); batch norm 1e-5 for outputs and gradients (float rounding of
// the per-channel means subtracted in the gradient: observed <= 6e-7) and 1e-6 for the
// running statistics.
#include "autograd/engine.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

Pool2dParams pool_params(const Tensor& t) {
  const std::vector<int64_t> v = t.to_vector<int64_t>();
  REQUIRE(v.size() == 10);
  Pool2dParams p;
  p.kernel = {v[0], v[1]};
  p.stride = {v[2], v[3]};
  p.padding = {v[4], v[5]};
  p.dilation = {v[6], v[7]};
  p.ceil_mode = v[8] != 0;
  p.count_include_pad = v[9] != 0;
  return p;
}

// Runs `op` on the case's input and compares value and input gradient.
template <typename Op>
void check_pool_case(const parity::Reference& ref, const std::string& name, Op op, double tol) {
  Tensor x = ref.at(name + ".x").clone().set_requires_grad();
  Tensor y = op(x);
  parity::expect_close(name + " value", y, ref.at(name + ".out"), tol, tol);
  Tensor gx = grad({y}, {x}, {ref.at(name + ".v")})[0];
  parity::expect_close(name + " grad_x", gx, ref.at(name + ".grad_x"), tol, tol);
}

}  // namespace

TEST_SUITE("parity") {
  TEST_CASE("pooling matches PyTorch") {
    auto ref = parity::reference("ref_pool_bn.py");
    if (!ref) return;
    int cases = 0;
    for (int i = 0; ref->has("max_pool2d." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "max_pool2d." + std::to_string(i);
      const Pool2dParams p = pool_params(ref->at(name + ".params"));
      check_pool_case(*ref, name, [&](const Tensor& x) { return max_pool2d(x, p); }, 1e-6);
      Tensor idx;
      ops::max_pool2d_forward(ref->at(name + ".x"), p, &idx);
      INFO(name);
      CHECK(idx.to_vector<int64_t>() == ref->at(name + ".indices").to_vector<int64_t>());
    }
    for (int i = 0; ref->has("avg_pool2d." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "avg_pool2d." + std::to_string(i);
      const Pool2dParams p = pool_params(ref->at(name + ".params"));
      check_pool_case(*ref, name, [&](const Tensor& x) { return avg_pool2d(x, p); }, 1e-6);
    }
    for (int i = 0; ref->has("adaptive_avg_pool2d." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "adaptive_avg_pool2d." + std::to_string(i);
      const std::vector<int64_t> size = ref->at(name + ".params").to_vector<int64_t>();
      check_pool_case(*ref, name, [&](const Tensor& x) { return adaptive_avg_pool2d(x, size[0], size[1]); }, 1e-6);
    }
    CHECK(cases == 49);
  }

  TEST_CASE("batch_norm matches PyTorch (train and eval, running statistics)") {
    auto ref = parity::reference("ref_pool_bn.py");
    if (!ref) return;
    int cases = 0;
    for (int i = 0; ref->has("batch_norm." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "batch_norm." + std::to_string(i);
      const std::vector<int64_t> params = ref->at(name + ".params").to_vector<int64_t>();
      const bool training = params[0] != 0;
      const double momentum = static_cast<double>(params[1]) * 1e-6, eps = static_cast<double>(params[2]) * 1e-12;
      INFO(name << " training " << training << " momentum " << momentum << " eps " << eps);
      Tensor x = ref->at(name + ".x").clone().set_requires_grad();
      Tensor w = ref->at(name + ".weight").clone().set_requires_grad();
      Tensor b = ref->at(name + ".bias").clone().set_requires_grad();
      Tensor rm = ref->at(name + ".running_mean").clone(), rv = ref->at(name + ".running_var").clone();
      Tensor y = batch_norm(x, w, b, rm, rv, training, momentum, eps);
      parity::expect_close(name + " value", y, ref->at(name + ".out"), 1e-5, 1e-5);
      parity::expect_close(name + " running_mean", rm, ref->at(name + ".running_mean_out"), 1e-6, 1e-6);
      parity::expect_close(name + " running_var", rv, ref->at(name + ".running_var_out"), 1e-6, 1e-6);
      std::vector<Tensor> g = grad({y}, {x, w, b}, {ref->at(name + ".v")});
      parity::expect_close(name + " grad_x", g[0], ref->at(name + ".grad_x"), 1e-5, 1e-5);
      parity::expect_close(name + " grad_weight", g[1], ref->at(name + ".grad_weight"), 1e-5, 1e-5);
      parity::expect_close(name + " grad_bias", g[2], ref->at(name + ".grad_bias"), 1e-5, 1e-5);
    }
    CHECK(cases == 12);
  }
}
