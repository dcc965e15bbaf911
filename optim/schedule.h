// Learning-rate schedules (SPEC 8), as a pure function of the iteration: lr(it) for
// it = 0, 1, ... is the rate used by update number it. No state to checkpoint: a resumed run
// asks for lr(it) at its iteration. W = warmup_iters, j = it - W (the main schedule's clock):
//
//   const    base
//   step     base * gamma^(number of milestones <= j)           torch MultiStepLR (milestones in iterations)
//   exp      base * gamma^j                                      torch ExponentialLR, stepped per iteration
//   cosine   min_lr + (base - min_lr) * (1 + cos(pi * j / T)) / 2 for j <= T, T = total_iters - W;
//            min_lr after that (torch would rise again)           torch CosineAnnealingLR(T_max=T, eta_min=min_lr)
//
// Warmup (W > 0) is exactly torch's
//   SequentialLR([LinearLR(start_factor=warmup_factor, total_iters=W), main], milestones=[W])
// stepped once per iteration:
//   it <  W:  base * (warmup_factor + (1 - warmup_factor) * it / W)   (linear, from base * warmup_factor)
//   it >= W:  the main schedule above at j = it - W                     (lr(W) = main(0), = base unless a
//                                                                       step milestone is 0)
// SequentialLR restarts the main schedule at the milestone, so the main schedule's clock starts
// after the warmup: step milestones count from the end of the warmup (milestone m takes effect
// at iteration W + m), exp decays from W, cosine runs over the remaining total - W iterations.
// Without warmup, j = it and each kind is the torch scheduler alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tether::optim {

struct ScheduleOptions {
  std::string kind = "const";  // const | step | exp | cosine
  double base_lr = 0.01;
  int64_t total_iters = 0;     // needed by cosine (> warmup_iters)
  std::vector<int64_t> milestones = {};  // step: >= 0, strictly increasing, at least one
  double gamma = 0.1;          // step, exp: >= 0
  double min_lr = 0.0;         // cosine's eta_min, >= 0
  int64_t warmup_iters = 0;    // >= 0
  double warmup_factor = 0.1;  // in [0, 1] (LinearLR's start_factor)
};

class Schedule {
 public:
  explicit Schedule(ScheduleOptions opts);  // validates (Error naming the bad value)
  double lr(int64_t iter) const;            // iter >= 0
  const ScheduleOptions& options() const { return opts_; }

 private:
  ScheduleOptions opts_;
};

const std::vector<std::string>& schedule_names();  // const, step, exp, cosine

}  // namespace tether::optim
