// SPEC 6 (PtR) on a small graph written here: rep = tanh(x A), logits = rep Wᵀ, J = mean CE.
// The loss against an independent double computation, its gradient by float64 gradcheck, w
// against per-instance gradient norms from explicit per-sample passes, the targets, the switch.
#include <cmath>

#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "regularizers/ptr.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;
using namespace tether::testing;

namespace {

constexpr int64_t kB = 5, kIn = 4, kD = 6, kK = 3;

struct Net {
  Tensor x = randn({kB, kIn}, 1), a = randn({kIn, kD}, 2, DType::f64, true), w = randn({kK, kD}, 3, DType::f64, true);
  Tensor labels = Tensor::empty({kB}, DType::i64);
  Net() {
    int64_t* l = labels.data<int64_t>();
    for (int64_t i = 0; i < kB; ++i) l[i] = i % kK;
  }
  Tensor rep(const Tensor& x_) const { return tanh(matmul(x_, a)); }
};

// f(d) as SPEC 6 writes it: smooth-L1 with threshold 1, or ½d².
double f(double d, const std::string& loss) {
  if (loss == "l2" || std::abs(d) < 1) return 0.5 * d * d;
  return std::abs(d) - 0.5;
}

}  // namespace

TEST_SUITE("regularizers") {
  TEST_CASE("SPEC 6: L_ptr = mean over batch and dims of f(rep − t) (smooth-L1 and ½x²), and its gradient (gradcheck)") {
    for (const std::string loss : {"sml1", "l2"}) {
      CAPTURE(loss);
      Tensor rep = randn({kB, kD}, 7, DType::f64, true);
      ops::scale_(rep, 2.0);  // entries on both sides of the smooth-L1 threshold
      Generator gen(5);
      const Tensor t = reg::ptr_targets(rep, 1.0, gen);
      std::vector<double> norms;
      const double got = reg::pseudo_task_loss(rep, t, loss, &norms).item<double>();
      const auto r = rep.to_vector<double>(), tv = t.to_vector<double>();
      double want = 0;
      int beyond = 0;
      for (size_t i = 0; i < r.size(); ++i) {
        want += f(r[i] - tv[i], loss);
        beyond += std::abs(r[i] - tv[i]) >= 1;
      }
      want /= static_cast<double>(r.size());
      CHECK(beyond > 0);
      CHECK(beyond < static_cast<int>(r.size()));
      CHECK(got == doctest::Approx(want).epsilon(1e-14));
      // ‖∂L/∂rep_i‖ = ‖f'(d_i)‖ / (B·D), f' = clamp(d, −1, 1) or d.
      for (int64_t i = 0; i < kB; ++i) {
        double sq = 0;
        for (int64_t j = 0; j < kD; ++j) {
          const double d = r[i * kD + j] - tv[i * kD + j];
          const double g = loss == "l2" ? d : std::clamp(d, -1.0, 1.0);
          sq += g * g;
        }
        CHECK(norms[static_cast<size_t>(i)] == doctest::Approx(std::sqrt(sq) / (kB * kD)).epsilon(1e-13));
      }
      const auto check = gradcheck([&](const std::vector<Tensor>& in) { return reg::pseudo_task_loss(in[0], t, loss); },
                                   {rep});
      CHECK_MESSAGE(check.ok, check.message);
    }
  }

  TEST_CASE("SPEC 6: w = mean_i G_ce / (mean_i G_ptr · R) with G_ce from per-sample passes; w·L_ptr's gradient treats w as a constant") {
    const Net net;
    const reg::PtrOptions opts{3.0, 1.0, "sml1", 1.0};
    const Tensor rep = net.rep(net.x);
    const Tensor J = cross_entropy(linear(rep, net.w), net.labels);
    Generator gen(11), replay(11);
    const reg::PtrStep step = reg::ptr_step(rep, J, opts, gen);
    // G_ce^(i) = ‖∂J/∂rep_i‖ with J = (1/B) Σ CE_i: sample i's own pass, its gradient over B.
    double g_ce = 0;
    for (int64_t i = 0; i < kB; ++i) {
      const Tensor rep_i = net.rep(narrow(net.x, 0, i, 1)).detach().set_requires_grad(true);
      const Tensor ce_i = cross_entropy(linear(rep_i, net.w), narrow(net.labels, 0, i, 1));
      const Tensor g = tether::grad({ce_i}, {rep_i}).at(0);
      g_ce += std::sqrt(ops::dot(g, g)) / kB / kB;
    }
    const Tensor t = reg::ptr_targets(rep, opts.mean, replay);  // the same draw as inside ptr_step
    std::vector<double> g_ptr;
    const double l_ptr = reg::pseudo_task_loss(rep.detach(), t, opts.loss, &g_ptr).item<double>();
    double mean_g_ptr = 0;
    for (double v : g_ptr) mean_g_ptr += v / kB;
    CHECK(step.mean_g_ce == doctest::Approx(g_ce).epsilon(1e-12));
    CHECK(step.mean_g_ptr == doctest::Approx(mean_g_ptr).epsilon(1e-12));
    CHECK(step.w == doctest::Approx(g_ce / (mean_g_ptr * opts.ratio)).epsilon(1e-12));
    CHECK(step.loss == doctest::Approx(l_ptr).epsilon(1e-14));
    CHECK(step.term.item<double>() == doctest::Approx(step.w * l_ptr).epsilon(1e-14));
    // The weighted loss's gradient on A is w times L_ptr's own (no term from w's dependence on A),
    // and J's graph survived ptr_step for the full backward.
    const Tensor total = J + step.term;
    const auto g_total = tether::grad({total}, {net.a}, {}, true).at(0).to_vector<double>();
    const auto g_j = tether::grad({J}, {net.a}, {}, true).at(0).to_vector<double>();
    const auto g_l = tether::grad({reg::pseudo_task_loss(rep, t, opts.loss)}, {net.a}).at(0).to_vector<double>();
    for (size_t i = 0; i < g_total.size(); ++i) CHECK(g_total[i] == doctest::Approx(g_j[i] + step.w * g_l[i]).epsilon(1e-12));
  }

  TEST_CASE("SPEC 6 targets: U[0, 2m) fresh per draw, reproducible by seed; m = 0 gives zeros") {
    const Tensor like = Tensor::zeros({64, 32}, DType::f32);
    Generator a(3), b(3), c(4);
    const auto ta = reg::ptr_targets(like, 1.5, a).to_vector<double>();
    CHECK(reg::ptr_targets(like, 1.5, b).to_vector<double>() == ta);
    CHECK(reg::ptr_targets(like, 1.5, c).to_vector<double>() != ta);
    CHECK(reg::ptr_targets(like, 1.5, a).to_vector<double>() != ta);  // the next step draws anew
    double lo = 1e9, hi = -1e9, mean = 0;
    for (double v : ta) lo = std::min(lo, v), hi = std::max(hi, v), mean += v / ta.size();
    CHECK(lo >= 0.0);
    CHECK(hi < 3.0);
    CHECK(mean == doctest::Approx(1.5).epsilon(0.05));
    Generator z(1);
    for (double v : reg::ptr_targets(like, 0.0, z).to_vector<double>()) CHECK(v == 0.0);
  }

  TEST_CASE("SPEC 6 switch: on at the epoch after one whose mean CE fell below T, then stays on; T = inf: on from the start") {
    reg::PtrSwitch s(1.0);
    CHECK(!s.active());
    s.end_epoch(1.2);
    CHECK(!s.active());
    s.end_epoch(0.99);
    CHECK(s.active());
    s.end_epoch(5.0);
    CHECK(s.active());
    CHECK(reg::PtrSwitch(INFINITY).active());
    CHECK(contains(error_of([] { reg::validate(reg::PtrOptions{0.0, 1.0, "sml1", 1.0}); }), "--ptr-ratio"));
    CHECK(contains(error_of([] { reg::validate(reg::PtrOptions{3.0, -1.0, "sml1", 1.0}); }), "--ptr-mean"));
    CHECK(contains(error_of([] { reg::validate(reg::PtrOptions{3.0, 1.0, "huber", 1.0}); }), "--ptr-loss must be sml1 or l2"));
  }
}
