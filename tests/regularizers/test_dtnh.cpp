// SPEC 7 (DTNH) on hand-built gradients: the corrected direction against the formulas written
// out here in double, both scopes, and the four logged angles against angles recomputed from
// the vectors themselves.
#include <cmath>

#include "regularizers/dtnh.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;
using namespace tether::testing;

namespace {

using Vec = std::vector<double>;

double dot(const Vec& x, const Vec& y) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}
Vec concat(const std::vector<Tensor>& ts) {
  Vec out;
  for (const Tensor& t : ts) {
    const auto v = t.to_vector<double>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}
Vec plus(const Vec& x, const Vec& y, double s = 1.0) {
  Vec out(x);
  for (size_t i = 0; i < x.size(); ++i) out[i] += s * y[i];
  return out;
}
double angle(const Vec& x, const Vec& y) {
  return std::acos(std::clamp(dot(x, y) / std::sqrt(dot(x, x) * dot(y, y)), -1.0, 1.0)) * 180.0 / M_PI;
}
std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.clone());
  return out;
}

// Two tensors, a conv-like [4,3,3,3] and a linear-like [5,6]. g_Ω on the first is built to
// oppose g_J there (−0.8 g_J + noise), on the second to agree with it (+0.3 g_J + noise), with
// the second's agreement large enough that the flattened ⟨g_J, g_Ω⟩ is positive when `agree_big`.
struct Grads {
  std::vector<Tensor> j, omega;
};
Grads make_grads(bool agree_big) {
  Grads g;
  g.j = {randn({4, 3, 3, 3}, 1), randn({5, 6}, 2)};
  if (agree_big) ops::scale_(g.j[1], 4.0);
  g.omega = {randn({4, 3, 3, 3}, 3), randn({5, 6}, 4)};
  ops::scale_(g.omega[0], 0.1);
  ops::axpy_(g.omega[0], -0.8, g.j[0]);
  ops::scale_(g.omega[1], 0.1);
  ops::axpy_(g.omega[1], 0.3, g.j[1]);
  return g;
}

}  // namespace

TEST_SUITE("regularizers") {
  TEST_CASE("SPEC 7 global scope, conflicting gradients: ⟨d, g_J⟩ = ‖g_J‖², ⟨g_Ω', g_J⟩ = 0, d = g_J + g_Ω'; angles as recomputed") {
    const Grads g = make_grads(false);
    const Vec gj = concat(g.j), go = concat(g.omega);
    REQUIRE(dot(gj, go) < 0);
    std::vector<Tensor> d = clones(g.j);
    const reg::DtnhStep step = reg::dtnh_direction(d, g.omega, reg::DtnhScope::global);
    CHECK(step.corrected == 1);
    CHECK(step.groups == 1);
    const Vec dv = concat(d);
    // SPEC 7 step 2 written out: g_Ω' = g_Ω − (⟨g_J, g_Ω⟩ / ‖g_J‖²) g_J; d = g_J + g_Ω'.
    const Vec go_corrected = plus(go, gj, -dot(gj, go) / dot(gj, gj));
    const Vec want = plus(gj, go_corrected);
    for (size_t i = 0; i < dv.size(); ++i) CHECK(dv[i] == doctest::Approx(want[i]).epsilon(1e-13));
    CHECK(dot(dv, gj) == doctest::Approx(dot(gj, gj)).epsilon(1e-12));
    CHECK(std::abs(dot(plus(dv, gj, -1.0), gj)) <= 1e-12 * dot(gj, gj));
    CHECK(step.angle1 == doctest::Approx(angle(dv, gj)).epsilon(1e-9));
    CHECK(step.angle2 == doctest::Approx(angle(dv, go_corrected)).epsilon(1e-9));
    CHECK(step.angle3 == doctest::Approx(angle(plus(gj, go), gj)).epsilon(1e-9));
    CHECK(step.angle4 == doctest::Approx(angle(plus(gj, go), go)).epsilon(1e-9));
    CHECK(step.angle2 == doctest::Approx(90.0 - step.angle1).epsilon(1e-9));  // g_Ω' ⟂ g_J
  }

  TEST_CASE("SPEC 7: no conflict, no correction: d = g_J + g_Ω exactly") {
    Grads g = make_grads(false);
    ops::scale_(g.omega[0], -1.0);  // now both tensors agree
    std::vector<Tensor> d = clones(g.j);
    const reg::DtnhStep step = reg::dtnh_direction(d, g.omega, reg::DtnhScope::global);
    CHECK(step.corrected == 0);
    for (size_t k = 0; k < d.size(); ++k) {
      const auto got = d[k].to_vector<double>(), j = g.j[k].to_vector<double>(), o = g.omega[k].to_vector<double>();
      for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == j[i] + o[i]);
    }
    CHECK(step.angle1 == doctest::Approx(step.angle3).epsilon(1e-12));
    CHECK(step.angle2 == doctest::Approx(step.angle4).epsilon(1e-12));
  }

  TEST_CASE("SPEC 7 scopes differ: a conflict in one tensor is corrected by --dtnh-scope tensor, not by global when the flattened product is positive") {
    const Grads g = make_grads(true);
    REQUIRE(dot(concat(g.j), concat(g.omega)) > 0);
    std::vector<Tensor> global = clones(g.j), tensor = clones(g.j);
    const reg::DtnhStep sg = reg::dtnh_direction(global, g.omega, reg::DtnhScope::global);
    const reg::DtnhStep st = reg::dtnh_direction(tensor, g.omega, reg::DtnhScope::tensor);
    CHECK(sg.corrected == 0);
    CHECK(st.corrected == 1);  // the first tensor only
    CHECK(st.groups == 2);
    // Global: plain sum everywhere. Tensor: the first tensor's g_Ω' ⟂ its g_J; the second is the plain sum.
    const Vec j0 = g.j[0].to_vector<double>(), o0 = g.omega[0].to_vector<double>();
    const Vec d0 = tensor[0].to_vector<double>();
    const Vec want0 = plus(j0, plus(o0, j0, -dot(j0, o0) / dot(j0, j0)));
    for (size_t i = 0; i < d0.size(); ++i) CHECK(d0[i] == doctest::Approx(want0[i]).epsilon(1e-13));
    CHECK(std::abs(dot(plus(d0, j0, -1.0), j0)) <= 1e-12 * dot(j0, j0));
    const Vec d1 = tensor[1].to_vector<double>(), plain1 = plus(g.j[1].to_vector<double>(), g.omega[1].to_vector<double>());
    CHECK(d1 == plain1);
    CHECK(global[1].to_vector<double>() == plain1);
    CHECK(global[0].to_vector<double>() == plus(j0, o0));
    // The angles are over the whole vector in both scopes.
    const Vec gj = concat(g.j), go = concat(g.omega), dv = concat(tensor);
    CHECK(st.angle1 == doctest::Approx(angle(dv, gj)).epsilon(1e-9));
    CHECK(st.angle2 == doctest::Approx(angle(dv, plus(dv, gj, -1.0))).epsilon(1e-9));
    CHECK(st.angle3 == doctest::Approx(angle(plus(gj, go), gj)).epsilon(1e-9));
  }

  TEST_CASE("SPEC 7: a parameter without a penalty gradient counts as g_Ω = 0; bad input is named") {
    Grads g = make_grads(false);
    g.omega[1] = Tensor();
    std::vector<Tensor> d = clones(g.j);
    const reg::DtnhStep step = reg::dtnh_direction(d, g.omega, reg::DtnhScope::global);
    CHECK(step.corrected == 1);
    const Vec gj = concat(g.j);
    Vec go = g.omega[0].to_vector<double>();
    go.resize(gj.size(), 0.0);
    const Vec want = plus(gj, plus(go, gj, -dot(gj, go) / dot(gj, gj)));
    const Vec dv = concat(d);
    for (size_t i = 0; i < dv.size(); ++i) CHECK(dv[i] == doctest::Approx(want[i]).epsilon(1e-13));
    CHECK(contains(error_of([] { reg::parse_dtnh_scope("layer"); }), "--dtnh-scope must be global or tensor"));
    std::vector<Tensor> short_list = {g.j[0].clone()};
    CHECK(contains(error_of([&] { reg::dtnh_direction(short_list, g.omega, reg::DtnhScope::global); }), "dtnh: 1 loss gradients but 2"));
  }
}
