// Learning-rate schedules (SPEC 8), as a pure function of the iteration: lr(it) for
// it = 0, 1, ..., total-1 is the rate used by update number it. No state to checkpoint.
//
//   const    base
//   step     base * gamma^(number of milestones <= it)        (torch MultiStepLR, milestones in iterations)
//   exp      base * gamma^it                                   (torch ExponentialLR, per iteration)
//   cosine   min + (base - min) * (1 + cos(pi * it / total)) / 2   (torch CosineAnnealingLR, T_max = total)
// Warmup (warmup_iters > 0): for it < warmup_iters the rate ramps linearly from
// base * warmup_factor to the schedule's value at warmup_iters (torch LinearLR chained the
// timm way); the main schedule then runs over the remaining iterations (cosine's total
// excludes the warmup).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tether::optim {

struct ScheduleOptions {
  std::string kind = "const";  // const | step | exp | cosine
  double base_lr = 0.01;
  int64_t total_iters = 0;     // needed by cosine
  std::vector<int64_t> milestones;
  double gamma = 0.1;
  double min_lr = 0.0;
  int64_t warmup_iters = 0;
  double warmup_factor = 0.1;
};

class Schedule {
 public:
  explicit Schedule(ScheduleOptions opts);  // validates (Error naming the bad value)
  double lr(int64_t iter) const;
  const ScheduleOptions& options() const { return opts_; }

 private:
  ScheduleOptions opts_;
};

const std::vector<std::string>& schedule_names();

}  // namespace tether::optim
