// SPEC 7's direction (regularizers/dtnh.h). The correction and the angles are written in terms
// of three sums per tensor, a = ‖g_J‖², b = ‖g_Ω‖², c = ⟨g_J, g_Ω⟩ (doubles). With the scale
// s = c / a applied when c < 0, g_Ω' = g_Ω − s g_J and d = g_J + g_Ω' = (1 − s) g_J + g_Ω:
//   ⟨g_J, g_Ω'⟩ = c − s a,   ‖g_Ω'‖² = b − 2 s c + s² a,
//   ⟨d, g_J⟩ = a + ⟨g_J, g_Ω'⟩,   ⟨d, g_Ω'⟩ = ⟨g_J, g_Ω'⟩ + ‖g_Ω'‖²,   ‖d‖² = a + 2⟨g_J, g_Ω'⟩ + ‖g_Ω'‖².
// On the CPU the sums are ops::dot and d is written by ops::scale_ and ops::axpy_ per tensor; on
// CUDA both passes are fused over all tensors (regularizers/cuda/dtnh_fused.h): one launch and one
// copy back for the sums, one launch for d.
#include "regularizers/dtnh.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/ops.h"
#include "regularizers/cuda/dtnh_fused.h"

namespace tether::reg {
namespace {

struct Sums {
  double a = 0, b = 0, c = 0;  // ‖g_J‖², ‖g_Ω‖², ⟨g_J, g_Ω⟩
};

double angle_degrees(double dot, double norm_sq_x, double norm_sq_y) {
  const double denom = std::sqrt(norm_sq_x * norm_sq_y);
  if (denom == 0) return 90.0;
  return std::acos(std::clamp(dot / denom, -1.0, 1.0)) * 180.0 / M_PI;
}

// The scale s of the correction: c / a when the gradients conflict (c < 0), else 0.
double correction(const Sums& s) { return s.c < 0 && s.a > 0 ? s.c / s.a : 0.0; }

}  // namespace

DtnhScope parse_dtnh_scope(const std::string& name) {
  if (name == "global") return DtnhScope::global;
  if (name == "tensor") return DtnhScope::tensor;
  TETHER_FAIL("--dtnh-scope must be global or tensor, got '", name, "'");
}

DtnhStep dtnh_direction(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega, DtnhScope scope) {
  TETHER_CHECK(g_j.size() == g_omega.size(), "dtnh: ", g_j.size(), " loss gradients but ", g_omega.size(),
               " penalty gradients");
  for (size_t k = 0; k < g_j.size(); ++k) {
    TETHER_CHECK(g_j[k].defined(), "dtnh: a trainable parameter has no loss gradient");
    TETHER_CHECK(!g_omega[k].defined() || g_omega[k].shape() == g_j[k].shape(), "dtnh: gradient shapes differ: ",
                 shape_str(g_j[k].shape()), " vs ", shape_str(g_omega[k].shape()));
  }
  const bool fused = !g_j.empty() && g_j.front().device().is_cuda();
  std::vector<Sums> per(g_j.size());
  if (fused) {
    const std::vector<cuda::DtnhSums> sums = cuda::dtnh_sums(g_j, g_omega);
    for (size_t k = 0; k < g_j.size(); ++k) per[k] = {sums[k].a, sums[k].b, sums[k].c};
  } else {
    for (size_t k = 0; k < g_j.size(); ++k) {
      per[k].a = ops::dot(g_j[k], g_j[k]);
      if (g_omega[k].defined()) {
        per[k].b = ops::dot(g_omega[k], g_omega[k]);
        per[k].c = ops::dot(g_j[k], g_omega[k]);
      }
    }
  }
  Sums total;
  for (const Sums& p : per) total.a += p.a, total.b += p.b, total.c += p.c;
  DtnhStep step;
  step.groups = scope == DtnhScope::global ? 1 : static_cast<int64_t>(g_j.size());
  const double global_s = correction(total);
  step.corrected = scope == DtnhScope::global ? (global_s != 0) : 0;
  // The corrected quantities, summed over tensors: ⟨g_J, g_Ω'⟩ and ‖g_Ω'‖².
  double jo = 0, oo = 0;
  std::vector<double> scales(g_j.size());
  for (size_t k = 0; k < g_j.size(); ++k) {
    const double s = scope == DtnhScope::global ? global_s : correction(per[k]);
    scales[k] = s;
    if (scope == DtnhScope::tensor) step.corrected += s != 0;
    jo += per[k].c - s * per[k].a;
    oo += per[k].b - 2 * s * per[k].c + s * s * per[k].a;
    if (fused) continue;
    // d = (1 − s) g_J + g_Ω, in place.
    if (s != 0) ops::scale_(g_j[k], 1 - s);
    if (g_omega[k].defined()) ops::axpy_(g_j[k], 1.0, g_omega[k]);
  }
  if (fused) cuda::dtnh_apply(g_j, g_omega, scales);
  const double dd = total.a + 2 * jo + oo;
  step.angle1 = angle_degrees(total.a + jo, dd, total.a);
  step.angle2 = angle_degrees(jo + oo, dd, oo);
  // The uncorrected sum g_J + g_Ω: ⟨·, g_J⟩ = a + c, ⟨·, g_Ω⟩ = c + b, ‖·‖² = a + 2c + b.
  const double plain = total.a + 2 * total.c + total.b;
  step.angle3 = angle_degrees(total.a + total.c, plain, total.a);
  step.angle4 = angle_degrees(total.c + total.b, plain, total.b);
  return step;
}

}  // namespace tether::reg
