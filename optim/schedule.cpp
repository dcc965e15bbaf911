// Learning-rate schedules: the closed forms of torch.optim.lr_scheduler (torch 1.13)
// MultiStepLR, ExponentialLR, CosineAnnealingLR (their _get_closed_form_lr) and LinearLR for the
// warmup, chained as SequentialLR chains them (see schedule.h). PyTorch steps them recursively
// (lr *= gamma, ...); the closed forms agree to rounding (tests/optim/test_optim_parity.cpp).
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"

namespace tether::optim {

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"const", "step", "exp", "cosine"};
  return names;
}

Schedule::Schedule(ScheduleOptions opts) : opts_(std::move(opts)) {
  const auto& names = schedule_names();
  if (std::find(names.begin(), names.end(), opts_.kind) == names.end()) {
    std::string valid;
    for (const std::string& n : names) valid += (valid.empty() ? "" : ", ") + n;
    TETHER_FAIL("unknown lr schedule '", opts_.kind, "' (valid: ", valid, ")");
  }
  TETHER_CHECK(opts_.base_lr >= 0 && std::isfinite(opts_.base_lr), "lr schedule: invalid base lr ", opts_.base_lr,
               " (must be >= 0)");
  TETHER_CHECK(opts_.warmup_iters >= 0, "lr schedule: negative warmup_iters ", opts_.warmup_iters);
  TETHER_CHECK(opts_.warmup_factor >= 0 && opts_.warmup_factor <= 1, "lr schedule: warmup_factor ",
               opts_.warmup_factor, " must be in [0, 1]");
  if (opts_.kind == "step" || opts_.kind == "exp")
    TETHER_CHECK(opts_.gamma >= 0 && std::isfinite(opts_.gamma), "lr schedule '", opts_.kind, "': invalid gamma ",
                 opts_.gamma, " (must be >= 0)");
  if (opts_.kind == "step") {
    TETHER_CHECK(!opts_.milestones.empty(), "lr schedule 'step' needs milestones (iterations where lr *= gamma)");
    for (size_t i = 0; i < opts_.milestones.size(); ++i) {
      TETHER_CHECK(opts_.milestones[i] >= 0, "lr schedule 'step': negative milestone ", opts_.milestones[i]);
      TETHER_CHECK(i == 0 || opts_.milestones[i] > opts_.milestones[i - 1],
                   "lr schedule 'step': milestones must be strictly increasing, got ", opts_.milestones[i - 1],
                   " then ", opts_.milestones[i]);
    }
  }
  if (opts_.kind == "cosine") {
    TETHER_CHECK(opts_.total_iters > opts_.warmup_iters, "lr schedule 'cosine' needs total_iters (",
                 opts_.total_iters, ") greater than warmup_iters (", opts_.warmup_iters, ")");
    TETHER_CHECK(opts_.min_lr >= 0 && std::isfinite(opts_.min_lr), "lr schedule 'cosine': invalid min_lr ",
                 opts_.min_lr, " (must be >= 0)");
  }
}

double Schedule::lr(int64_t iter) const {
  TETHER_CHECK(iter >= 0, "lr schedule: negative iteration ", iter);
  const ScheduleOptions& o = opts_;
  const double base = o.base_lr;
  const int64_t warmup = o.warmup_iters;
  if (iter < warmup)  // LinearLR._get_closed_form_lr with end_factor 1
    return base * (o.warmup_factor + (1.0 - o.warmup_factor) * static_cast<double>(iter) / static_cast<double>(warmup));
  const int64_t j = iter - warmup;  // SequentialLR restarts the main schedule at the milestone
  if (o.kind == "step") {  // MultiStepLR: base * gamma ** bisect_right(milestones, j)
    const auto passed = std::upper_bound(o.milestones.begin(), o.milestones.end(), j) - o.milestones.begin();
    return base * std::pow(o.gamma, static_cast<double>(passed));
  }
  if (o.kind == "exp") return base * std::pow(o.gamma, static_cast<double>(j));  // ExponentialLR
  if (o.kind == "cosine") {  // CosineAnnealingLR: eta_min + (base - eta_min) * (1 + cos(pi * j / T_max)) / 2
    const int64_t t_max = o.total_iters - warmup;
    if (j >= t_max) return o.min_lr;
    return o.min_lr +
           (base - o.min_lr) * (1 + std::cos(std::numbers::pi * static_cast<double>(j) / static_cast<double>(t_max))) / 2;
  }
  return base;  // const
}

}  // namespace tether::optim
