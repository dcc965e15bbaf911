// Per-layer distances from the starting point, written to the run's diagnostics.csv at every
// evaluation and at the end (the MARS paper's Figure 2 data; issue 6). One row per tensor of S
// (measured from w0) and of S̄ (measured from 0, as its penalties and its ball are):
//   frobenius    ‖w − c‖_F
//   mars         max_r ‖w_r − c_r‖₁ — the MARS norm, i.e. the largest row L1 norm (SPEC 1 rows)
//   reference    ‖w0‖_F for S (frobenius / reference is the relative change), 0 for S̄
//   radius       the --project radius that applies to the tensor (γ for S, γ_V for S̄), inf: none
//   ratio        the projection's own measure over its radius: frobenius / radius (l2-pgm) or
//                mars / radius (mars-pgm); <= 1 + 1e-5 after every projected step (SPEC 3)
//   active       the constraint binds: ratio >= 1 − 1e-5 (the projection changed or would change it)
//   active_rows  mars-pgm: the rows at their limit (‖Δ_r‖₁ >= γ(1 − 1e-5)); l2-pgm: 0
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "regularizers/param_sets.h"
#include "regularizers/projection.h"

namespace tether::reg {

struct LayerDistance {
  std::string name;
  std::string set;  // "S" or "head"
  int64_t numel = 0, rows = 0;
  double frobenius = 0, mars = 0, reference = 0;
  double radius = 0, ratio = 0;
  bool active = false;
  int64_t active_rows = 0;
};

// How close to its limit a tensor must be to count as active (SPEC 3's 1e-5 relative).
constexpr double kActiveTolerance = 1e-5;

std::vector<LayerDistance> layer_distances(const ParamSets& sets, const ProjectionOptions& projection);

// diagnostics.csv: "step,epoch,layer,set,numel,rows,frobenius,mars,reference,radius,ratio,active,active_rows".
const char* diagnostics_csv_header();
std::string diagnostics_csv_row(int64_t step, int64_t epoch, const LayerDistance& d);

}  // namespace tether::reg
