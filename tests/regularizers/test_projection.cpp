// SPEC 3 projections (regularizers/projection.h) on hand-built f32/f64 tensors, against an
// independent computation written here in double from the tensors' values.
#include <cmath>
#include <limits>

#include "regularizers/projection.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;
using namespace tether::testing;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// S: a conv weight [4,3,3,3], a linear weight [5,6], a BN weight [4] (1-D: rows [C,1]); S̄: a
// head [3,5] and its bias [3]. Δ = w − w0 per tensor is drawn with its own scale, so that one
// radius leaves some tensors (and rows) inside the ball and moves others.
template <typename T>
reg::ParamSets make_sets() {
  const DType dt = dtype_of<T>();
  reg::ParamSets sets;
  const std::vector<std::tuple<std::string, Shape, double>> s{
      {"conv.weight", {4, 3, 3, 3}, 0.3}, {"lin.weight", {5, 6}, 0.02}, {"bn.weight", {4}, 0.5}};
  uint64_t seed = 11;
  for (const auto& [name, shape, scale] : s) {
    Tensor w0 = randn(shape, seed++, dt);
    Tensor w = w0.clone();
    ops::axpy_(w, scale, randn(shape, seed++, dt));
    sets.inherited.emplace_back(name, w);
    sets.w0.emplace(name, w0);
  }
  // The head: a tensor outside γ_V = 1 and a bias inside it.
  Tensor fc = randn({3, 5}, seed++, dt), bias = randn({3}, seed++, dt);
  ops::scale_(bias, 0.1);
  sets.head.emplace_back("fc.weight", fc);
  sets.head.emplace_back("fc.bias", bias);
  return sets;
}

std::vector<std::vector<double>> values(const nn::NamedTensors& ts) {
  std::vector<std::vector<double>> out;
  for (const auto& [name, t] : ts) out.push_back(t.template to_vector<double>());
  return out;
}

// The expected values of one tensor, SPEC 3 written out: `rows` = 1 for the Frobenius ball,
// d0 for the row-wise (mars) balls; L1 norms when `l1`.
std::vector<double> expected(const std::vector<double>& w, const std::vector<double>* w0, int64_t rows, bool l1,
                             double gamma) {
  std::vector<double> out = w;
  if (!std::isfinite(gamma)) return out;
  const size_t len = w.size() / rows;
  for (int64_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (size_t i = r * len; i < (r + 1) * len; ++i) {
      const double d = w[i] - (w0 ? (*w0)[i] : 0.0);
      norm += l1 ? std::abs(d) : d * d;
    }
    if (!l1) norm = std::sqrt(norm);
    const double divisor = std::max(1.0, norm / gamma);
    for (size_t i = r * len; i < (r + 1) * len; ++i) {
      const double c = w0 ? (*w0)[i] : 0.0;
      out[i] = c + (w[i] - c) / divisor;
    }
  }
  return out;
}

// The largest norm / γ over a tensor's rows (rows = 1: the whole tensor).
double ratio(const std::vector<double>& w, const std::vector<double>* w0, int64_t rows, bool l1, double gamma) {
  const size_t len = w.size() / rows;
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (size_t i = r * len; i < (r + 1) * len; ++i) {
      const double d = w[i] - (w0 ? (*w0)[i] : 0.0);
      norm += l1 ? std::abs(d) : d * d;
    }
    worst = std::max(worst, (l1 ? norm : std::sqrt(norm)) / gamma);
  }
  return worst;
}

int64_t rows_of(const Tensor& t) { return t.dim() == 0 ? 1 : t.shape()[0]; }

// Runs the projection hook on fresh sets and checks every tensor against `expected`, the
// untouched ones bitwise, and the constraint after it.
template <typename T>
void check_projection(const std::string& project, double gamma, double gamma_head) {
  CAPTURE(project);
  CAPTURE(gamma);
  CAPTURE(gamma_head);
  const bool l1 = project == "mars-pgm";
  const double rtol = std::is_same_v<T, float> ? 2e-7 : 4e-15;
  reg::ParamSets sets = make_sets<T>();
  const auto before_s = values(sets.inherited), before_h = values(sets.head);
  const reg::ProjectionOptions opts{project, gamma, gamma_head};
  // The ratio before: what the independent computation says.
  double ratio_before = 0;
  for (size_t k = 0; k < sets.inherited.size(); ++k) {
    const auto w0 = sets.w0.at(sets.inherited[k].first).template to_vector<double>();
    const int64_t rows = l1 ? rows_of(sets.inherited[k].second) : 1;
    if (std::isfinite(gamma)) ratio_before = std::max(ratio_before, ratio(before_s[k], &w0, rows, l1, gamma));
  }
  for (size_t k = 0; k < sets.head.size(); ++k) {
    const int64_t rows = l1 ? rows_of(sets.head[k].second) : 1;
    if (std::isfinite(gamma_head)) ratio_before = std::max(ratio_before, ratio(before_h[k], nullptr, rows, l1, gamma_head));
  }
  CHECK(reg::max_constraint_ratio(opts, sets) == doctest::Approx(ratio_before).epsilon(1e-12));

  const auto hook = reg::make_projection(opts, sets);
  REQUIRE(hook.has_value());
  CHECK(hook->name == project);
  hook->run();

  int moved = 0, kept = 0;
  auto check_tensor = [&](const std::string& name, const Tensor& t, const std::vector<double>& before,
                          const std::vector<double>* w0, double g) {
    CAPTURE(name);
    const int64_t rows = l1 ? rows_of(t) : 1;
    const auto want = expected(before, w0, rows, l1, g);
    const auto got = t.template to_vector<double>();
    bool unchanged = true;
    for (size_t i = 0; i < got.size(); ++i) {
      // One rounding of c + Δ·s in T: relative to the magnitudes involved.
      const double scale = std::abs(want[i]) + std::abs(before[i]) + (w0 ? std::abs((*w0)[i]) : 0.0);
      CHECK(std::abs(got[i] - want[i]) <= rtol * scale);
      unchanged = unchanged && got[i] == before[i];
    }
    // Inside the ball (or disabled): bitwise unchanged. SPEC 3: max(1, ·) leaves it alone.
    const double r_before = std::isfinite(g) ? ratio(before, w0, rows, l1, g) : 0.0;
    if (r_before <= 1.0) {
      CHECK(unchanged);
      ++kept;
    } else {
      CHECK(!unchanged);
      ++moved;
      // Rows inside the ball keep their values bitwise too (mars-pgm).
      const size_t len = before.size() / rows;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> row(before.begin() + r * len, before.begin() + (r + 1) * len), row0;
        if (w0) row0.assign(w0->begin() + r * len, w0->begin() + (r + 1) * len);
        if (ratio(row, w0 ? &row0 : nullptr, 1, l1, g) <= 1.0)
          for (size_t i = r * len; i < (r + 1) * len; ++i) CHECK(got[i] == before[i]);
      }
    }
    // SPEC 3: after the projection the constraint holds to 1e-5 relative on every row/tensor.
    if (std::isfinite(g)) CHECK(ratio(got, w0, rows, l1, g) <= 1.0 + 1e-5);
  };
  for (size_t k = 0; k < sets.inherited.size(); ++k) {
    const auto& [name, t] = sets.inherited[k];
    const auto w0 = sets.w0.at(name).template to_vector<double>();
    check_tensor(name, t, before_s[k], &w0, gamma);
  }
  // S̄: the ball around 0 with γ_V (w0 plays no part).
  for (size_t k = 0; k < sets.head.size(); ++k) check_tensor(sets.head[k].first, sets.head[k].second, before_h[k], nullptr, gamma_head);
  if (std::isfinite(gamma) || std::isfinite(gamma_head)) {
    CHECK(moved > 0);  // the radii were chosen so that the test moves something
    CHECK(reg::max_constraint_ratio(opts, sets) <= 1.0 + 1e-5);
    CHECK(reg::max_constraint_ratio(opts, sets) >= 1.0 - 1e-5);  // the binding tensors sit on the sphere
  } else {
    CHECK(moved == 0);
  }
  CHECK(kept > 0);
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE_TEMPLATE("SPEC 3 l2-pgm: W ← W0 + ΔW / max(1, ‖ΔW‖_F/γ) on S, V ← V / max(1, ‖V‖_F/γ_V) on the head",
                     T, float, double) {
    // ‖Δ‖_F: conv ≈ 0.3·√108 ≈ 3.1, lin ≈ 0.02·√30 ≈ 0.11, bn ≈ 0.5·2 = 1; head fc ≈ √15, bias ≈ 0.17.
    check_projection<T>("l2-pgm", 0.5, 1.0);
    check_projection<T>("l2-pgm", 0.5, kInf);  // the head unconstrained
    check_projection<T>("l2-pgm", kInf, 1.0);  // S unconstrained
  }

  TEST_CASE_TEMPLATE("SPEC 3 mars-pgm: per row (SPEC 1 rows, 1-D as [C,1]) Δ_r ← Δ_r / max(1, ‖Δ_r‖₁/γ)", T, float,
                     double) {
    // Row L1 norms: conv rows ≈ 0.3·27·0.8 ≈ 6.5, lin rows ≈ 0.02·6·0.8 ≈ 0.1, bn |Δ| ≈ 0.4 each.
    check_projection<T>("mars-pgm", 0.4, 2.0);
    check_projection<T>("mars-pgm", 0.4, kInf);
    check_projection<T>("mars-pgm", kInf, 2.0);
  }

  TEST_CASE_TEMPLATE("SPEC 3: an infinite γ and γ_V leave every tensor bitwise unchanged", T, float, double) {
    check_projection<T>("l2-pgm", kInf, kInf);
    check_projection<T>("mars-pgm", kInf, kInf);
    reg::ParamSets sets = make_sets<T>();
    CHECK(reg::max_constraint_ratio({"l2-pgm", kInf, kInf}, sets) == 0.0);
  }

  TEST_CASE_TEMPLATE("SPEC 3: a projection is idempotent: projecting the projected weights again moves them by rounding only",
                     T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 4e-7 : 1e-15;
    for (const std::string project : {"l2-pgm", "mars-pgm"}) {
      CAPTURE(project);
      reg::ParamSets sets = make_sets<T>();
      const reg::ProjectionOptions opts{project, project == "l2-pgm" ? 0.5 : 0.4, project == "l2-pgm" ? 1.0 : 2.0};
      const auto hook = reg::make_projection(opts, sets);
      hook->run();
      const auto once_s = values(sets.inherited), once_h = values(sets.head);
      hook->run();
      const auto twice_s = values(sets.inherited), twice_h = values(sets.head);
      int64_t moved_again = 0;
      for (const auto* pair : {&once_s, &once_h}) {
        const auto& once = *pair;
        const auto& twice = pair == &once_s ? twice_s : twice_h;
        for (size_t k = 0; k < once.size(); ++k)
          for (size_t i = 0; i < once[k].size(); ++i) {
            CHECK(std::abs(twice[k][i] - once[k][i]) <= rtol * (std::abs(once[k][i]) + 1.0));
            moved_again += twice[k][i] != once[k][i];
          }
      }
      MESSAGE(project << ": " << moved_again << " values moved by rounding on the second projection");
      CHECK(reg::max_constraint_ratio(opts, sets) <= 1.0 + 1e-5);
    }
  }

  TEST_CASE("SPEC 3: the head is pulled toward 0 with γ_V, S toward w0 with γ (not the other way round)") {
    reg::ParamSets sets = make_sets<double>();
    const Tensor fc = sets.head[0].second, conv = sets.inherited[0].second;
    const auto fc_before = fc.to_vector<double>(), conv_before = conv.to_vector<double>();
    const auto w0 = sets.w0.at("conv.weight").to_vector<double>();
    reg::make_projection({"l2-pgm", 0.25, 0.75}, sets)->run();
    CHECK(ops::norm(fc) == doctest::Approx(0.75).epsilon(1e-12));  // ‖V‖ = γ_V: scaled toward 0
    const auto fc_after = fc.to_vector<double>();
    const double s = fc_after[0] / fc_before[0];
    for (size_t i = 0; i < fc_after.size(); ++i) CHECK(fc_after[i] == doctest::Approx(s * fc_before[i]).epsilon(1e-12));
    const auto conv_after = conv.to_vector<double>();
    double dist = 0, to_zero_before = 0, to_zero_after = 0;
    for (size_t i = 0; i < w0.size(); ++i) {
      dist += (conv_after[i] - w0[i]) * (conv_after[i] - w0[i]);
      to_zero_before += conv_before[i] * conv_before[i], to_zero_after += conv_after[i] * conv_after[i];
    }
    CHECK(std::sqrt(dist) == doctest::Approx(0.25).epsilon(1e-12));  // ‖W − W0‖ = γ
    CHECK(std::abs(to_zero_after - to_zero_before) > 0.1);              // it did not shrink toward 0 by γ
  }

  TEST_CASE("SPEC 3: projections reject γ <= 0 or NaN naming the flag, and unknown names listing the valid ones") {
    reg::ParamSets sets = make_sets<float>();
    CHECK(contains(error_of([&] { reg::make_projection({"l2-pgm", 0.0, kInf}, sets); }), "--gamma "));
    CHECK(contains(error_of([&] { reg::make_projection({"mars-pgm", 1.0, -1.0}, sets); }), "--gamma-head"));
    CHECK(contains(error_of([&] { reg::make_projection({"l2-pgm", std::nan(""), kInf}, sets); }), "--gamma"));
    const std::string unknown = error_of([&] { reg::make_projection({"l1-pgm", 1.0, 1.0}, sets); });
    CHECK(contains(unknown, "--project"));
    CHECK(contains(unknown, "l2-pgm, mars-pgm"));
    CHECK(!reg::make_projection({"none", 0.0, 0.0}, sets).has_value());
  }
}
