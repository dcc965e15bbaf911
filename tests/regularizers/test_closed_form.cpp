// SPEC 2, last bullets: a penalty's gradient may come from "a closed form that the tests prove
// equal to" autograd. Penalty::add_gradient (regularizers/sp_kernels.cpp) against the autograd
// path Penalty::terms for every weight-space penalty: the same part names and values, the same
// gradients (float64, 1e-12 relative) whether .grad is empty, already holds values, or the
// gradient goes to a caller's map; bit-identical for 1 and 2 OpenMP threads. (MARS' tie: the
// first maximising row, in test_sp_penalties.cpp beside the autograd path's.)
#include <omp.h>

#include <map>

#include "core/safetensors.h"
#include "regularizers/penalty.h"
#include "regularizers/sp_kernels.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;

namespace {

// SPEC 1 shapes: conv, depthwise conv (one row per channel), linear, and 1-D (as with
// --reg-params all); the head: a linear weight and its bias.
const std::vector<std::pair<std::string, Shape>> kS{
    {"conv.weight", {4, 3, 3, 3}}, {"dw.weight", {6, 1, 3, 3}}, {"fc1.weight", {5, 7}}, {"bn.bias", {6}}};
const std::vector<std::pair<std::string, Shape>> kHead{{"head.weight", {3, 5}}, {"head.bias", {3}}};
const std::vector<std::string> kRegs{"l2", "l2sp", "l2sp-fisher", "l1sp", "glsp", "glsp-fisher", "mars-sp"};

// Parameters (requires grad) with Δ ≠ 0 except a zero row and a zero entry, w0, and a Fisher
// file with some zero F.
struct Model {
  reg::ParamSets sets;
  testing::TempDir dir;
  std::string fisher_path;

  Model(const std::vector<std::pair<std::string, Shape>>& s, const std::vector<std::pair<std::string, Shape>>& head,
        DType dtype, uint64_t seed) {
    std::map<std::string, Tensor> fisher;
    for (const auto& [name, shape] : s) {
      Tensor w0 = testing::randn(shape, ++seed, dtype);
      std::vector<double> d = testing::randn(shape, ++seed).to_vector<double>();
      const size_t p = d.size() / static_cast<size_t>(shape[0]);
      if (shape.size() >= 2) std::fill(d.begin() + static_cast<long>(p), d.begin() + static_cast<long>(2 * p), 0.0);
      d[0] = 0;
      Tensor w = ops::binary(ops::Binary::add, w0, ops::cast(Tensor::from_vector(d, shape), dtype));
      w.set_requires_grad(true);
      sets.inherited.emplace_back(name, w);
      sets.w0.emplace(name, w0);
      std::vector<double> f = testing::uniform(shape, 0.0, 2.0, ++seed).to_vector<double>();
      for (size_t j = 0; j < f.size(); j += 7) f[j] = 0;
      fisher.emplace(name, ops::cast(Tensor::from_vector(f, shape), dtype));
    }
    for (const auto& [name, shape] : head) {
      Tensor v = testing::randn(shape, ++seed, dtype);
      v.set_requires_grad(true);
      sets.head.emplace_back(name, v);
    }
    fisher_path = dir.file("fisher.safetensors");
    safetensors::save(fisher_path, fisher);
  }
  std::vector<Tensor> params() const {
    std::vector<Tensor> out;
    for (const auto* set : {&sets.inherited, &sets.head})
      for (const auto& [name, t] : *set) out.push_back(t);
    return out;
  }
  std::unique_ptr<reg::Penalty> penalty(const std::string& reg, double eps) const {
    reg::PenaltyOptions o{reg, 0.3, 0.07};
    if (reg::needs_fisher(reg)) o.fisher = fisher_path;
    o.smooth_eps = eps;
    return reg::make_penalty(o, sets);
  }
  void zero_grad() const {
    for (const Tensor& p : params()) p.zero_grad();
  }
};

// terms(scale)'s values and the autograd gradient of their sum (then .grad is cleared).
struct Reference {
  reg::Values values;
  std::vector<Tensor> grads;
};
Reference autograd_reference(const Model& m, const reg::Penalty& penalty, double scale) {
  Reference ref;
  Tensor total;
  for (const auto& [name, t] : penalty.terms(scale)) {
    ref.values.emplace_back(name, t.item<double>());
    total = total.defined() ? total + t : t;
  }
  REQUIRE(total.defined());
  total.backward();
  for (const Tensor& p : m.params()) ref.grads.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  m.zero_grad();
  return ref;
}

void check_values(const reg::Values& got, const reg::Values& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].first == want[i].first);
    CHECK(got[i].second == doctest::Approx(want[i].second).epsilon(1e-12).scale(0));
  }
}

// Every element of a equals b's (f32 → double is exact, so this compares the stored values).
bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

TEST_SUITE("regularizers") {
  TEST_CASE("closed form (SPEC 2): add_gradient's values and gradients equal terms() and its autograd gradient") {
    const Model m(kS, kHead, DType::f64, 11);
    for (const double eps : {1e-8, 0.5})
      for (const auto& reg : kRegs) {
        CAPTURE(reg);
        CAPTURE(eps);
        const auto penalty = m.penalty(reg, eps);
        const double scale = 0.7;
        const Reference ref = autograd_reference(m, *penalty, scale);
        const auto params = m.params();
        // 1. .grad empty: written directly.
        check_values(penalty->add_gradient(scale), ref.values);
        for (size_t i = 0; i < params.size(); ++i) {
          CAPTURE(i);
          REQUIRE(params[i].grad().defined());
          TETHER_CHECK_CLOSE(params[i].grad(), ref.grads[i], 1e-12, 1e-300);
        }
        // 2. .grad already holds values (g_J): accumulated.
        std::vector<Tensor> before;
        for (size_t i = 0; i < params.size(); ++i) {
          before.push_back(testing::randn(params[i].shape(), 100 + i));
          params[i].set_grad(before.back().clone());
        }
        check_values(penalty->add_gradient(scale), ref.values);
        for (size_t i = 0; i < params.size(); ++i)
          TETHER_CHECK_CLOSE(params[i].grad(), ops::binary(ops::Binary::add, before[i], ref.grads[i]), 1e-12, 1e-14);
        m.zero_grad();
        // 3. a separate target: .grad untouched; an existing entry accumulated, missing ones created.
        reg::GradTarget into;
        const std::string first = m.sets.inherited[0].first;
        into[first] = before[0].clone();
        check_values(penalty->add_gradient(scale, &into), ref.values);
        CHECK(into.size() == params.size());
        size_t i = 0;
        for (const auto* set : {&m.sets.inherited, &m.sets.head})
          for (const auto& [name, p] : *set) {
            CAPTURE(name);
            CHECK(!p.grad().defined());
            const Tensor want = i == 0 ? ops::binary(ops::Binary::add, before[0], ref.grads[0]) : ref.grads[i];
            TETHER_CHECK_CLOSE(into.at(name), want, 1e-12, 1e-14);
            ++i;
          }
      }
  }

  TEST_CASE_TEMPLATE("closed form: value and gradient are bit-identical for 1 and 2 OpenMP threads", T, float, double) {
    // Tensors of several chunks (2^15 elements): elementwise, long rows and many short rows.
    const Model m({{"big.weight", {300, 250}}, {"rows.weight", {40000, 3}}, {"vec", {70001}}},
                  {{"head.weight", {200, 300}}}, dtype_of<T>(), 5);
    const int threads = omp_get_max_threads();
    for (const auto& reg : kRegs) {
      CAPTURE(reg);
      const auto penalty = m.penalty(reg, 1e-3);
      std::vector<reg::Values> values;
      std::vector<std::vector<Tensor>> grads;
      for (const int n : {1, 2}) {
        omp_set_num_threads(n);
        values.push_back(penalty->add_gradient(0.9));
        grads.emplace_back();
        for (const Tensor& p : m.params()) grads.back().push_back(p.grad());
        m.zero_grad();
      }
      omp_set_num_threads(threads);
      REQUIRE(values[0].size() == values[1].size());
      for (size_t i = 0; i < values[0].size(); ++i) CHECK(values[0][i].second == values[1][i].second);
      for (size_t i = 0; i < grads[0].size(); ++i) CHECK(same_values(grads[0][i], grads[1][i]));
    }
  }

  TEST_CASE("closed-form kernels: value conventions (Σ F Δ², √(Δ²+ε²) − ε without cancellation) and bad operands") {
    const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
    const Tensor c = Tensor::from_vector(std::vector<double>{0, 2, 1, 1}, {2, 2});
    const Tensor f = Tensor::from_vector(std::vector<double>{2, 5, 1, 0.5}, {2, 2});
    CHECK(reg::kernels::squared_distance(x, c, f) == doctest::Approx(2 * 1 + 0 + 4 + 0.5 * 9));
    Tensor g = Tensor::zeros({2, 2}, DType::f64);
    reg::kernels::squared_distance(x, c, f, {g, 0.5});
    CHECK(g.to_vector<double>() == std::vector<double>{2, 0, 2, 1.5});  // 0.5 · 2 F Δ
    // Δ = 1e-12 with ε = 1e-8: √(Δ²+ε²) − ε computed naively keeps about 8 digits.
    const Tensor tiny = Tensor::from_vector(std::vector<double>{1e-12}, {1});
    const double want = 1e-24 / (std::sqrt(1e-24 + 1e-16) + 1e-8);
    CHECK(reg::kernels::smooth_l1(tiny, Tensor(), 1e-8) == doctest::Approx(want).epsilon(1e-14).scale(0));
    CHECK(reg::kernels::group_lasso(tiny, Tensor(), Tensor(), 1e-8) == doctest::Approx(want).epsilon(1e-14).scale(0));
    CHECK(testing::contains(testing::error_of([&] { reg::kernels::mars(x, ops::reshape(f, {4})); }), "does not match"));
    CHECK(testing::contains(testing::error_of([&] { reg::kernels::mars(x, Tensor(), {Tensor::zeros({2, 2})}); }),
                            "gradient buffer"));
  }
}
