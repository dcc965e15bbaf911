// SPEC 2's rows l2sp-fisher, l1sp, glsp, glsp-fisher and mars-sp (with SPEC 1's rows and
// parameter sets): each value against a double-precision loop written here (not the
// implementation), each gradient against float64 finite differences and against the
// closed forms, the --fisher file's errors, and F = 1 reducing the Fisher rows to their
// plain versions.
#include <algorithm>
#include <cmath>
#include <map>

#include "core/safetensors.h"
#include "regularizers/penalty.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"
#include "tools/train/options.h"

using namespace tether;

namespace {

// SPEC 1 shapes: a conv weight, a depthwise conv weight (one row per channel), a linear weight
// and a 1-D tensor (rows of length 1); the head is a linear weight.
const std::vector<std::pair<std::string, Shape>> kInherited{
    {"conv.weight", {4, 3, 3, 3}}, {"dw.weight", {6, 1, 3, 3}}, {"fc1.weight", {5, 7}}, {"bn.weight", {6}}};
const std::pair<std::string, Shape> kHead{"head.weight", {3, 5}};

struct Fixture {
  std::vector<Tensor> w;             // inherited, then the head (f64, requires grad)
  std::map<std::string, Tensor> w0;  // inherited only
  std::map<std::string, Tensor> fisher;
  testing::TempDir dir;
  std::string fisher_path;

  explicit Fixture(uint64_t seed) {
    for (size_t i = 0; i < kInherited.size(); ++i) {
      const auto& [name, shape] = kInherited[i];
      Tensor w0t = testing::randn(shape, seed + 10 * i);
      // Δ ~ N(0, 0.3²), with the second row of every ≥ 2-D tensor exactly at w0 (a zero row:
      // the glsp/l1sp kink) and one single zero entry.
      Tensor delta = ops::mul_scalar(testing::randn(shape, seed + 10 * i + 1), 0.3);
      std::vector<double> dv = delta.to_vector<double>();
      const int64_t p = static_cast<int64_t>(dv.size()) / shape[0];
      if (shape.size() >= 2) std::fill(dv.begin() + p, dv.begin() + 2 * p, 0.0);
      dv[0] = 0.0;
      Tensor wt = ops::binary(ops::Binary::add, w0t, Tensor::from_vector(dv, shape));
      wt.set_requires_grad(true);
      w.push_back(wt);
      w0.emplace(name, w0t);
      // F ≥ 0 with some exact zeros.
      std::vector<double> fv = testing::uniform(shape, 0.0, 2.0, seed + 10 * i + 2).to_vector<double>();
      for (size_t j = 0; j < fv.size(); j += 5) fv[j] = 0.0;
      fisher.emplace(name, Tensor::from_vector(fv, shape));
    }
    Tensor head = testing::randn(kHead.second, seed + 99);
    head.set_requires_grad(true);
    w.push_back(head);
    fisher_path = dir.file("fisher.safetensors");
    auto with_head = fisher;  // the source model's head: another shape, not read
    with_head.emplace("head.weight", Tensor::ones({1000, 5}, DType::f64));
    safetensors::save(fisher_path, with_head);
  }

  // ParamSets over `params` (the fixture's tensors, or gradcheck's copies of them).
  reg::ParamSets sets(const std::vector<Tensor>& params) const {
    reg::ParamSets s;
    for (size_t i = 0; i < kInherited.size(); ++i) s.inherited.emplace_back(kInherited[i].first, params[i]);
    s.head.emplace_back(kHead.first, params.back());
    s.w0 = w0;
    return s;
  }
  reg::ParamSets sets() const { return sets(w); }
};

// ---- the reference: SPEC 2's formulas as plain double loops -------------------------------
struct Rows {
  int64_t r, p;
};
Rows rows_of(const Shape& s) { return {s[0], static_cast<int64_t>(shape_numel(s)) / s[0]}; }

std::vector<double> vec(const Tensor& t) { return t.detach().to_vector<double>(); }

// Ω_S / α for one tensor (l2sp-fisher includes its ½).
double ref_tensor(const std::string& reg, const std::vector<double>& d, const std::vector<double>& f, Rows rows,
                  double eps) {
  double total = 0;
  if (reg == "l2sp-fisher") {
    for (size_t j = 0; j < d.size(); ++j) total += 0.5 * f[j] * d[j] * d[j];  // α/2 Σ F_j Δ_j²
  } else if (reg == "l1sp") {
    for (double x : d) total += std::sqrt(x * x + eps * eps) - eps;  // α Σ (√(Δ_j² + ε²) − ε)
  } else if (reg == "glsp" || reg == "glsp-fisher") {
    for (int64_t r = 0; r < rows.r; ++r) {  // α Σ_r √p_r (√(Σ_{j∈r} [F_j] Δ_j² + ε²) − ε)
      double q = 0;
      for (int64_t j = r * rows.p; j < (r + 1) * rows.p; ++j) q += (reg == "glsp" ? 1.0 : f[j]) * d[j] * d[j];
      total += std::sqrt(static_cast<double>(rows.p)) * (std::sqrt(q + eps * eps) - eps);
    }
  } else {  // mars-sp: max over rows of the row's L1 norm
    double best = -1;
    for (int64_t r = 0; r < rows.r; ++r) {
      double s = 0;
      for (int64_t j = r * rows.p; j < (r + 1) * rows.p; ++j) s += std::abs(d[j]);
      best = std::max(best, s);
    }
    total = best;
  }
  return total;
}

// ∂(Ω_S/α)/∂w for one tensor: SPEC 2's closed forms.
std::vector<double> ref_grad(const std::string& reg, const std::vector<double>& d, const std::vector<double>& f,
                             Rows rows, double eps) {
  std::vector<double> g(d.size(), 0.0);
  if (reg == "l2sp-fisher") {
    for (size_t j = 0; j < d.size(); ++j) g[j] = f[j] * d[j];  // α F Δ
  } else if (reg == "l1sp") {
    for (size_t j = 0; j < d.size(); ++j) g[j] = d[j] / std::sqrt(d[j] * d[j] + eps * eps);  // α Δ / √(Δ² + ε²)
  } else if (reg == "glsp" || reg == "glsp-fisher") {
    for (int64_t r = 0; r < rows.r; ++r) {  // α √p_r [F] Δ_r / √(‖Δ_r‖²_[F] + ε²)
      double q = 0;
      for (int64_t j = r * rows.p; j < (r + 1) * rows.p; ++j) q += (reg == "glsp" ? 1.0 : f[j]) * d[j] * d[j];
      for (int64_t j = r * rows.p; j < (r + 1) * rows.p; ++j)
        g[j] = std::sqrt(static_cast<double>(rows.p)) * (reg == "glsp" ? 1.0 : f[j]) * d[j] / std::sqrt(q + eps * eps);
    }
  } else {  // mars-sp: sign(Δ) on the first maximising row, 0 elsewhere
    int64_t best_row = 0;
    double best = -1;
    for (int64_t r = 0; r < rows.r; ++r) {
      double s = 0;
      for (int64_t j = r * rows.p; j < (r + 1) * rows.p; ++j) s += std::abs(d[j]);
      if (s > best) best = s, best_row = r;  // strict: the first one on ties
    }
    for (int64_t j = best_row * rows.p; j < (best_row + 1) * rows.p; ++j) g[j] = (d[j] > 0) - (d[j] < 0);
  }
  return g;
}

const std::vector<std::string> kRegs{"l2sp-fisher", "l1sp", "glsp", "glsp-fisher", "mars-sp"};

reg::PenaltyOptions options(const std::string& reg, double alpha, double beta, const std::string& fisher, double eps) {
  reg::PenaltyOptions o{reg, alpha, beta};
  o.fisher = fisher;
  o.smooth_eps = eps;
  return o;
}

Tensor total(const reg::Terms& terms) {
  Tensor t;
  for (const auto& [name, v] : terms) t = t.defined() ? t + v : v;
  return t;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("sp penalties (SPEC 2 l2sp-fisher, l1sp, glsp, glsp-fisher, mars-sp): values equal the table's formulas") {
    Fixture fx(1);
    const reg::ParamSets sets = fx.sets();
    const double alpha = 0.3, beta = 0.07, scale = 0.5;
    for (const double eps : {1e-8, 0.5}) {
      for (const auto& reg : kRegs) {
        CAPTURE(reg);
        CAPTURE(eps);
        auto penalty = reg::make_penalty(options(reg, alpha, beta, fx.fisher_path, eps), sets);
        REQUIRE(penalty != nullptr);
        CHECK(penalty->name() == reg);
        const reg::Terms terms = penalty->terms(scale);
        REQUIRE(terms.size() == 2);
        CHECK(terms[0].first == "omega.S");
        CHECK(terms[1].first == "omega.head");
        double s = 0;
        for (const auto& [name, shape] : kInherited) {
          const auto& w = std::find_if(sets.inherited.begin(), sets.inherited.end(),
                                       [&](const auto& kv) { return kv.first == name; })->second;
          std::vector<double> d = vec(w), w0 = vec(fx.w0.at(name));
          for (size_t j = 0; j < d.size(); ++j) d[j] -= w0[j];
          s += ref_tensor(reg, d, vec(fx.fisher.at(name)), rows_of(shape), eps);
        }
        // The head: β/2 Σ_S̄ ‖w‖², or β Σ_S̄ ‖V‖_mars for mars-sp.
        const std::vector<double> v = vec(fx.w.back());
        double h = 0;
        if (reg == "mars-sp")
          h = ref_tensor("mars-sp", v, {}, rows_of(kHead.second), eps);
        else
          for (double x : v) h += 0.5 * x * x;
        CHECK(terms[0].second.item<double>() == doctest::Approx(scale * alpha * s).epsilon(1e-12));
        CHECK(terms[1].second.item<double>() == doctest::Approx(scale * beta * h).epsilon(1e-12));
      }
    }
  }

  TEST_CASE("sp penalties (SPEC 2): gradients equal the closed forms (α F Δ, α Δ/√(Δ²+ε²), α √p Δ_r/√(‖Δ_r‖²+ε²), mars sign)") {
    Fixture fx(2);
    const reg::ParamSets sets = fx.sets();
    const double alpha = 0.3, beta = 0.07, scale = 0.5;
    for (const double eps : {1e-8, 0.5}) {
      for (const auto& reg : kRegs) {
        CAPTURE(reg);
        CAPTURE(eps);
        auto penalty = reg::make_penalty(options(reg, alpha, beta, fx.fisher_path, eps), sets);
        for (auto& w : fx.w) w.zero_grad();
        total(penalty->terms(scale)).backward();
        for (size_t i = 0; i < kInherited.size(); ++i) {
          const auto& [name, shape] = kInherited[i];
          INFO(name);
          std::vector<double> d = vec(fx.w[i]), w0 = vec(fx.w0.at(name));
          for (size_t j = 0; j < d.size(); ++j) d[j] -= w0[j];
          std::vector<double> g = ref_grad(reg, d, vec(fx.fisher.at(name)), rows_of(shape), eps);
          for (double& x : g) x *= scale * alpha;
          TETHER_CHECK_CLOSE(fx.w[i].grad(), Tensor::from_vector(g, shape), 1e-12, 1e-15);
        }
        // Head: β v, or β sign(v) on the first maximising row for mars-sp.
        std::vector<double> v = vec(fx.w.back());
        std::vector<double> g = reg == "mars-sp" ? ref_grad("mars-sp", v, {}, rows_of(kHead.second), eps) : v;
        for (double& x : g) x *= scale * beta;
        TETHER_CHECK_CLOSE(fx.w.back().grad(), Tensor::from_vector(g, kHead.second), 1e-12, 1e-15);
      }
    }
  }

  TEST_CASE("sp penalties (SPEC 2): float64 gradcheck of the whole penalty, S and S̄ together") {
    Fixture fx(3);
    for (const double eps : {1e-8, 0.5}) {
      for (const auto& reg : kRegs) {
        CAPTURE(reg);
        CAPTURE(eps);
        auto f = [&](const std::vector<Tensor>& params) {
          const reg::ParamSets sets = fx.sets(params);
          auto penalty = reg::make_penalty(options(reg, 0.3, 0.07, fx.fisher_path, eps), sets);
          return total(penalty->terms(0.5));
        };
        TETHER_GRADCHECK(f, fx.w);
      }
    }
  }

  TEST_CASE("mars-sp (SPEC 2): on tied rows the subgradient is sign(Δ) on the first maximising row only") {
    // Δ of a [4, 3] weight: rows 1 and 3 tie for the largest L1 norm (6); row 0 is 5.
    const std::vector<double> delta{1, -2, 2, /**/ 3, -2, 1, /**/ 0, 0, 0, /**/ -1, 2, -3};
    Tensor w0 = testing::randn({4, 3}, 7);
    Tensor w = ops::binary(ops::Binary::add, w0, Tensor::from_vector(delta, {4, 3}));
    w.set_requires_grad(true);
    // The head V [2, 2]: rows tie (|−1|+2 = |3|+0), so row 0 is taken.
    Tensor v = Tensor::from_vector(std::vector<double>{-1, 2, 3, 0}, {2, 2});
    v.set_requires_grad(true);
    reg::ParamSets sets;
    sets.inherited.emplace_back("a.weight", w);
    sets.head.emplace_back("fc.weight", v);
    sets.w0.emplace("a.weight", w0);
    const double alpha = 0.25, beta = 0.5;
    auto penalty = reg::make_penalty({"mars-sp", alpha, beta}, sets);
    const reg::Terms terms = penalty->terms(1.0);
    CHECK(terms[0].second.item<double>() == doctest::Approx(alpha * 6));
    CHECK(terms[1].second.item<double>() == doctest::Approx(beta * 3));
    total(terms).backward();
    const std::vector<double> gw{0, 0, 0, alpha, -alpha, alpha, 0, 0, 0, 0, 0, 0};
    TETHER_CHECK_CLOSE(w.grad(), Tensor::from_vector(gw, {4, 3}), 1e-15, 1e-15);
    const std::vector<double> gv{-beta, beta, 0, 0};
    TETHER_CHECK_CLOSE(v.grad(), Tensor::from_vector(gv, {2, 2}), 1e-15, 1e-15);
    // The closed form (Penalty::add_gradient) picks the same row, written into an empty .grad
    // and then accumulated: only the first maximising row changes.
    w.zero_grad(), v.zero_grad();
    const reg::Values values = penalty->add_gradient(1.0);
    REQUIRE(values.size() == 2);
    CHECK(values[0].second == alpha * 6);
    CHECK(values[1].second == beta * 3);
    CHECK(w.grad().to_vector<double>() == gw);
    CHECK(v.grad().to_vector<double>() == gv);
    penalty->add_gradient(1.0);
    for (size_t j = 0; j < gw.size(); ++j) CHECK(w.grad().to_vector<double>()[j] == 2 * gw[j]);
  }

  TEST_CASE("fisher penalties (SPEC 2): uniform F = 1 makes l2sp-fisher equal l2sp and glsp-fisher equal glsp") {
    Fixture fx(4);
    std::map<std::string, Tensor> ones;
    for (const auto& [name, shape] : kInherited) ones.emplace(name, Tensor::ones(shape, DType::f64));
    const std::string path = fx.dir.file("ones.safetensors");
    safetensors::save(path, ones);
    const reg::ParamSets sets = fx.sets();
    for (const auto& [fisher_reg, plain_reg] : {std::pair{"l2sp-fisher", "l2sp"}, std::pair{"glsp-fisher", "glsp"}}) {
      CAPTURE(fisher_reg);
      std::vector<Tensor> values, grads;
      for (const std::string reg : {fisher_reg, plain_reg}) {
        auto penalty = reg::make_penalty(options(reg, 0.3, 0.07, path, 1e-8), sets);
        for (auto& w : fx.w) w.zero_grad();
        Tensor t = total(penalty->terms(1.0));
        t.backward();
        values.push_back(t.detach());
        for (size_t i = 0; i < kInherited.size(); ++i) grads.push_back(fx.w[i].grad().clone());
      }
      CHECK(values[0].item<double>() == doctest::Approx(values[1].item<double>()).epsilon(1e-13));
      for (size_t i = 0; i < kInherited.size(); ++i) TETHER_CHECK_CLOSE(grads[i], grads[i + kInherited.size()], 1e-13, 1e-16);
    }
  }

  TEST_CASE("--fisher (SPEC 2, SPEC 4): missing file, missing key, wrong shape, negative or NaN F are errors naming them") {
    Fixture fx(5);
    const reg::ParamSets sets = fx.sets();
    auto make = [&](const std::string& reg, const std::string& path) {
      return testing::error_of([&] { reg::make_penalty(options(reg, 0.1, 0.0, path, 1e-8), sets); });
    };
    // Fisher penalties need --fisher, named with --reg.
    for (const std::string reg : {"l2sp-fisher", "glsp-fisher"}) {
      const std::string e = make(reg, "");
      CHECK(e.find("--fisher") != std::string::npos);
      CHECK(e.find("--reg " + reg) != std::string::npos);
    }
    CHECK(make("l2sp-fisher", fx.dir.file("absent.safetensors")).find("absent.safetensors") != std::string::npos);
    auto write_and_load = [&](std::map<std::string, Tensor> tensors) {
      const std::string path = fx.dir.file("bad.safetensors");
      safetensors::save(path, tensors);
      return make("glsp-fisher", path);
    };
    {
      auto t = fx.fisher;
      t.erase("fc1.weight");
      const std::string e = write_and_load(t);
      CHECK(e.find("bad.safetensors") != std::string::npos);
      CHECK(e.find("'fc1.weight'") != std::string::npos);
    }
    {
      auto t = fx.fisher;
      t["dw.weight"] = Tensor::ones({6, 9}, DType::f64);
      const std::string e = write_and_load(t);
      CHECK(e.find("bad.safetensors") != std::string::npos);
      CHECK(e.find("'dw.weight'") != std::string::npos);
      CHECK(e.find("[6, 9]") != std::string::npos);
    }
    for (const double bad : {-1.0, std::nan("")}) {
      auto t = fx.fisher;
      std::vector<double> v(6, 1.0);
      v[3] = bad;
      t["bn.weight"] = Tensor::from_vector(v, {6});
      const std::string e = write_and_load(t);
      CHECK(e.find("'bn.weight'") != std::string::npos);
      CHECK(e.find(">= 0 and finite") != std::string::npos);
    }
    // A valid file loads, F cast to each parameter's dtype.
    const auto f = reg::load_fisher(fx.fisher_path, sets);
    CHECK(f.size() == kInherited.size());
    CHECK(f.at("conv.weight").dtype() == DType::f64);
    // --smooth-eps must be positive.
    CHECK(testing::error_of([&] { reg::make_penalty(options("l1sp", 0.1, 0, "", 0.0), sets); }).find("--smooth-eps") !=
          std::string::npos);
  }

  TEST_CASE("tether train options (SPEC 2): --reg *-fisher needs --fisher; --fisher needs a Fisher penalty; the new names are known") {
    train::TrainOptions o;
    o.iters = 1;
    o.reg = "glsp-fisher";
    std::string e = testing::error_of([&] { train::validate(o); });
    CHECK(e.find("--reg glsp-fisher") != std::string::npos);
    CHECK(e.find("--fisher") != std::string::npos);
    o.reg = "l2sp";
    o.fisher = "f.safetensors";
    CHECK(testing::error_of([&] { train::validate(o); }).find("--fisher") != std::string::npos);
    for (const auto& reg : kRegs) {
      o.reg = reg;
      o.fisher = reg::needs_fisher(reg) ? "f.safetensors" : "";
      CHECK(testing::error_of([&] { train::validate(o); }).find("--reg") == std::string::npos);
    }
    o.smooth_eps = -1;
    CHECK(testing::error_of([&] { train::validate(o); }).find("--smooth-eps") != std::string::npos);
    const auto j = train::to_json(o);
    CHECK(j.at("smooth-eps").get<double>() == -1);
    CHECK(j.contains("fisher"));
  }
}
