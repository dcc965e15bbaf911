// lr schedules (optim/schedule.h): the documented closed forms at hand-checked points and the
// option checks. PyTorch parity for 30 iterations is in test_optim_parity.cpp.
#include <cmath>
#include <functional>
#include <numbers>

#include "optim/schedule.h"
#include "tests/test_util.h"

using namespace tether;
using optim::Schedule;
using optim::ScheduleOptions;

namespace {

std::string error_of(const ScheduleOptions& o) {
  return tether::testing::error_of([&] { Schedule s(o); });
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("schedules: closed forms, warmup as SequentialLR(LinearLR, main)") {
    const Schedule constant({.kind = "const", .base_lr = 0.1});
    CHECK(constant.lr(0) == 0.1);
    CHECK(constant.lr(123456) == 0.1);

    // Step: milestones in iterations; without warmup milestone m applies from iteration m.
    const Schedule step({.kind = "step", .base_lr = 1.0, .milestones = {2, 5}, .gamma = 0.5});
    CHECK(step.lr(1) == 1.0);
    CHECK(step.lr(2) == 0.5);
    CHECK(step.lr(4) == 0.5);
    CHECK(step.lr(5) == 0.25);
    // With warmup W the main schedule's clock starts at W: milestone m applies from W + m.
    const Schedule step_w({.kind = "step", .base_lr = 1.0, .milestones = {2}, .gamma = 0.5, .warmup_iters = 4,
                           .warmup_factor = 0.2});
    CHECK(step_w.lr(0) == doctest::Approx(0.2).epsilon(1e-15));
    CHECK(step_w.lr(2) == doctest::Approx(0.6).epsilon(1e-15));  // 0.2 + 0.8 * 2/4
    CHECK(step_w.lr(4) == 1.0);
    CHECK(step_w.lr(5) == 1.0);
    CHECK(step_w.lr(6) == 0.5);

    const Schedule exp({.kind = "exp", .base_lr = 2.0, .gamma = 0.9, .warmup_iters = 3, .warmup_factor = 0.5});
    CHECK(exp.lr(3) == 2.0);
    CHECK(exp.lr(5) == doctest::Approx(2.0 * 0.81).epsilon(1e-15));

    // Cosine: T = total - warmup; min_lr at it = total and after (clamped; torch would rise again).
    const Schedule cos({.kind = "cosine", .base_lr = 1.0, .total_iters = 14, .min_lr = 0.1, .warmup_iters = 4,
                        .warmup_factor = 0.0});
    CHECK(cos.lr(0) == 0.0);
    CHECK(cos.lr(4) == 1.0);
    CHECK(cos.lr(9) == doctest::Approx(0.55).epsilon(1e-15));  // halfway through T = 10
    CHECK(cos.lr(7) == doctest::Approx(0.1 + 0.9 * (1 + std::cos(std::numbers::pi * 0.3)) / 2).epsilon(1e-15));
    CHECK(cos.lr(14) == doctest::Approx(0.1).epsilon(1e-15));
    CHECK(cos.lr(20) == 0.1);
    for (int64_t it = 5; it < 14; ++it) CHECK(cos.lr(it) < cos.lr(it - 1));
    CHECK_THROWS_WITH_AS(cos.lr(-1), doctest::Contains("negative iteration -1"), Error);
    CHECK(cos.options().total_iters == 14);
  }

  TEST_CASE("schedule options are checked, naming the bad value") {
    CHECK(contains(error_of({.kind = "linear"}), "unknown lr schedule 'linear' (valid: const, step, exp, cosine)"));
    CHECK(optim::schedule_names() == std::vector<std::string>{"const", "step", "exp", "cosine"});
    CHECK(contains(error_of({.kind = "cosine"}), "'cosine' needs total_iters (0) greater than warmup_iters (0)"));
    CHECK(contains(error_of({.kind = "cosine", .total_iters = 10, .warmup_iters = 10}), "warmup_iters (10)"));
    CHECK(error_of({.kind = "cosine", .total_iters = 11, .warmup_iters = 10}) == "(no error)");
    CHECK(contains(error_of({.kind = "const", .warmup_iters = -1}), "negative warmup_iters -1"));
    CHECK(contains(error_of({.kind = "const", .warmup_iters = 5, .warmup_factor = 1.5}), "warmup_factor 1.5"));
    CHECK(contains(error_of({.kind = "step", .milestones = {5, 5}}), "strictly increasing, got 5 then 5"));
    CHECK(contains(error_of({.kind = "step", .milestones = {10, 3}}), "strictly increasing, got 10 then 3"));
    CHECK(contains(error_of({.kind = "step", .milestones = {-2}}), "negative milestone -2"));
    CHECK(contains(error_of({.kind = "step"}), "'step' needs milestones"));
    CHECK(contains(error_of({.kind = "exp", .gamma = -0.5}), "invalid gamma -0.5"));
    CHECK(contains(error_of({.kind = "const", .base_lr = -1}), "invalid base lr -1"));
    CHECK(contains(error_of({.kind = "cosine", .total_iters = 5, .min_lr = -1}), "invalid min_lr -1"));
  }
}
