// PtR (SPEC 6, `--ptr`): a pseudo regression task on `rep` (the head's input) with random targets,
// weighted so that its gradient on rep stays a fixed fraction of the classification loss's.
//   t_i ~ U[0, 2m)^D fresh every step (m = --ptr-mean; m = 0: zero targets)
//   L_ptr = mean over batch and dims of f(rep − t); f = smooth-L1 (threshold 1) or ½x² (--ptr-loss)
//   G_ce^(i) = ‖∂J/∂rep_i‖, G_ptr^(i) = ‖∂L_ptr/∂rep_i‖, w = mean_i G_ce / (mean_i G_ptr · R)
//   the loss becomes J + w·L_ptr (+ Ω), w a constant (no gradient through it)
// and it switches on at the first epoch after one whose mean training CE fell below --ptr-threshold.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tether::reg {

struct PtrOptions {
  double ratio = 3;          // --ptr-ratio R
  double mean = 1;           // --ptr-mean m
  std::string loss = "sml1";  // --ptr-loss sml1 | l2
  double threshold = 1.0;    // --ptr-threshold T (inf: on from the first step)
};
void validate(const PtrOptions& opts);  // names the flag

// Targets of shape `like` ([B, D]), U[0, 2m) from `gen` (zeros when m = 0).
Tensor ptr_targets(const Tensor& like, double mean, Generator& gen);

// L_ptr = (1/(B·D)) Σ f(rep − t) as a differentiable scalar (gradient to rep only). f written as
// c·d − ½c² with c = clamp(d, −1, 1) (smooth-L1) or c = d (½x²), so f'(d) = c; `row_grad_norms`,
// when given, receives ‖∂L_ptr/∂rep_i‖ = ‖c_i‖ / (B·D) per row.
Tensor pseudo_task_loss(const Tensor& rep, const Tensor& targets, const std::string& loss,
                        std::vector<double>* row_grad_norms = nullptr);

struct PtrStep {
  Tensor term;  // w·L_ptr, to add to the loss (undefined when inactive)
  double w = 0, mean_g_ce = 0, mean_g_ptr = 0, loss = 0;
};

// One step's term: draws the targets, computes ∂J/∂rep on J's graph (kept for the backward), the
// weight w and w·L_ptr. rep: [B, D] on J's graph.
PtrStep ptr_step(const Tensor& rep, const Tensor& J, const PtrOptions& opts, Generator& gen);

// The switch-on rule: on at the first epoch after an epoch whose mean training CE fell below T.
class PtrSwitch {
 public:
  explicit PtrSwitch(double threshold, bool on = false) : threshold_(threshold), on_(on || std::isinf(threshold)) {}
  bool active() const { return on_; }
  void end_epoch(double mean_ce) { on_ = on_ || mean_ce < threshold_; }

 private:
  double threshold_;
  bool on_;
};

}  // namespace tether::reg
