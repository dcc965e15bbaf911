// SPEC 1 parameter sets and SPEC 2's l2 / l2sp rows: values and gradients against direct
// double-precision sums and the closed-form gradients α(w − w0), α w, β v.
#include <cmath>

#include "autograd/grad_mode.h"
#include "models/registry.h"
#include "regularizers/penalty.h"
#include "tests/test_util.h"

using namespace tether;

namespace {

// Σ (w − w0)² in double, straight from the values.
double sq_dist(const Tensor& w, const Tensor* w0) {
  const auto a = w.to_vector<double>();
  const auto b = w0 ? w0->to_vector<double>() : std::vector<double>(a.size(), 0.0);
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

void perturb(const nn::NamedTensors& params, uint64_t seed) {
  NoGradGuard g;
  for (const auto& [name, p] : params) {
    Tensor noise = testing::randn(p.shape(), seed++, DType::f32) * 0.01;
    p.copy_(p.detach() + noise);
  }
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("ParamSets (SPEC 1): head vs inherited, --reg-params weights|all, frozen excluded, w0 copied") {
    manual_seed(0);
    auto model = models::create_model("resnet18", {7});
    model->freeze("layer1");
    const auto weights = reg::select_param_sets(*model, reg::ParamFilter::weights);
    const auto all = reg::select_param_sets(*model, reg::ParamFilter::all);
    for (const auto& [n, p] : weights.inherited) {
      CHECK(p.dim() >= 2);
      CHECK(n.rfind("fc.", 0) != 0);
      CHECK(n.rfind("layer1.", 0) != 0);
    }
    REQUIRE(weights.head.size() == 1);
    CHECK(weights.head[0].first == "fc.weight");
    REQUIRE(all.head.size() == 2);
    CHECK(all.head[1].first == "fc.bias");
    // resnet18: 20 conv weights, 4 of them in layer1 (frozen); with "all", the BN affine pairs
    // of the 16 remaining convs' BNs are added (32 tensors).
    CHECK(weights.inherited.size() == 16);
    CHECK(all.inherited.size() == 16 + 32);
    CHECK(weights.w0.size() == weights.inherited.size());
    // w0 is a copy: changing the weights leaves it alone.
    const Tensor before = weights.w0.at("conv1.weight").clone();
    perturb(weights.inherited, 1);
    CHECK(ops::norm(ops::binary(ops::Binary::sub, weights.w0.at("conv1.weight"), before)) == 0.0);
  }

  TEST_CASE("l2 and l2sp (SPEC 2): value and gradient equal the direct sums and closed forms") {
    manual_seed(1);
    auto model = models::create_model("resnet18", {5});
    const auto sets = reg::select_param_sets(*model, reg::ParamFilter::all);
    perturb(sets.inherited, 10);
    perturb(sets.head, 100);
    const double alpha = 0.3, beta = 0.07, scale = 0.5;
    for (const std::string reg : {"l2", "l2sp"}) {
      CAPTURE(reg);
      const bool sp = reg == "l2sp";
      auto penalty = reg::make_penalty({reg, alpha, beta}, sets);
      const reg::Terms terms = penalty->terms(scale);
      REQUIRE(terms.size() == 2);
      double s = 0, h = 0;
      for (const auto& [n, w] : sets.inherited) s += sq_dist(w, sp ? &sets.w0.at(n) : nullptr);
      for (const auto& [n, w] : sets.head) h += sq_dist(w, nullptr);
      CHECK(terms[0].first == "omega.S");
      CHECK(terms[0].second.item<double>() == doctest::Approx(scale * alpha / 2 * s).epsilon(1e-5));
      CHECK(terms[1].second.item<double>() == doctest::Approx(scale * beta / 2 * h).epsilon(1e-5));
      model->zero_grad();
      (terms[0].second + terms[1].second).backward();
      // ∇ = scale·α(w − w0) on S (scale·α w for l2), scale·β v on S̄.
      for (const auto& [n, w] : sets.inherited) {
        Tensor expect = sp ? ops::binary(ops::Binary::sub, w.detach(), sets.w0.at(n)) : w.detach();
        expect = ops::mul_scalar(expect, scale * alpha);
        INFO(n);
        TETHER_CHECK_CLOSE(w.grad(), expect, 1e-5, 1e-7);
      }
      for (const auto& [n, w] : sets.head) {
        INFO(n);
        TETHER_CHECK_CLOSE(w.grad(), ops::mul_scalar(w.detach(), scale * beta), 1e-5, 1e-7);
      }
    }
  }

  TEST_CASE("make_penalty: none gives no penalty; unknown names and negative coefficients are errors") {
    manual_seed(2);
    auto model = models::create_model("resnet18", {3});
    const auto sets = reg::select_param_sets(*model, reg::ParamFilter::weights);
    CHECK(reg::make_penalty({"none", 0, 0}, sets) == nullptr);
    CHECK_THROWS_WITH_AS(reg::make_penalty({"l3sp", 1, 0}, sets), doctest::Contains("--reg: unknown penalty 'l3sp'"),
                         Error);
    CHECK_THROWS_WITH_AS(reg::make_penalty({"l2sp", -1, 0}, sets), doctest::Contains("--alpha"), Error);
    CHECK_THROWS_WITH_AS(reg::parse_param_filter("bias"), doctest::Contains("--reg-params"), Error);
  }
}
