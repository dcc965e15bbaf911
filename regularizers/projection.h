// Projections of SPEC 3 (`--project`), applied after every optimizer step under no-grad as a
// projection hook of the step pipeline (optim/step.h):
//   l2-pgm    per tensor W of S:  W ← W0 + ΔW / max(1, ‖ΔW‖_F / γ)      (Frobenius ball around w0)
//             per tensor V of S̄: V ← V / max(1, ‖V‖_F / γ_V)          (ball around 0)
//   mars-pgm  per row r (SPEC 1 rows: [d0, rest], 1-D as [C, 1]) of every tensor of S:
//             Δ_r ← Δ_r / max(1, ‖Δ_r‖₁ / γ); of S̄: v_r ← v_r / max(1, ‖v_r‖₁ / γ_V)
//             (the row-wise rescaling of the MARS paper's code, not the exact L1-ball projection)
// γ = --gamma, γ_V = --gamma-head; an infinite value disables that part. Norms are accumulated
// in double; the tensors are rewritten in place (contiguous CPU f32/f64), nothing is allocated.
#pragma once
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "optim/step.h"
#include "regularizers/param_sets.h"

namespace tether::reg {

struct ProjectionOptions {
  std::string project = "none";                                // --project
  double gamma = std::numeric_limits<double>::infinity();       // --gamma: radius for S
  double gamma_head = std::numeric_limits<double>::infinity();  // --gamma-head: radius for S̄
};

const std::vector<std::string>& projection_names();  // "none", "l2-pgm", "mars-pgm"

// The hook that projects `sets` (held by reference: keep them alive) after every step;
// std::nullopt for "none". Throws naming the flag on an unknown name or a radius <= 0 / NaN.
std::optional<optim::Hook> make_projection(const ProjectionOptions& opts, const ParamSets& sets);

// The largest constraint ratio over the constrained tensors (l2-pgm: ‖ΔW‖_F / γ per tensor) or
// rows (mars-pgm: ‖Δ_r‖₁ / γ per row), S against w0 and S̄ against 0, at the current values
// (after a projection it is <= 1 up to rounding). 0 when nothing is constrained.
double max_constraint_ratio(const ProjectionOptions& opts, const ParamSets& sets);

// The building blocks, on one tensor (contiguous, CPU, f32 or f64). `center` is w0 (same shape
// and dtype) or undefined for the ball around 0. An infinite radius leaves `w` untouched.
void project_l2_ball(const Tensor& w, const Tensor& center, double radius);
void project_row_l1_balls(const Tensor& w, const Tensor& center, double radius);
// ‖w − center‖_F / radius and max_r ‖w_r − center_r‖₁ / radius.
double l2_ratio(const Tensor& w, const Tensor& center, double radius);
double row_l1_ratio(const Tensor& w, const Tensor& center, double radius);
// ‖w_r − center_r‖₁ for every row r (the diagnostics' per-row view of the MARS constraint).
std::vector<double> row_l1_norms(const Tensor& w, const Tensor& center);

}  // namespace tether::reg
