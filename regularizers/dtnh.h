// DTNH (SPEC 7, `--dtnh`): the descent direction that never lets the penalty's gradient work
// against the training loss's. With g_J = ∇J and g_Ω = ∇Ω computed separately on one batch:
//   if ⟨g_J, g_Ω⟩ < 0:  g_Ω ← g_Ω − (⟨g_J, g_Ω⟩ / ‖g_J‖²) g_J      (over all trainable parameters
//                                                                    flattened: scope global; or
//                                                                    per tensor: scope tensor)
//   d = g_J + g_Ω  is what the optimizer receives (SGD, momentum and Adam alike).
// The log's four angles (degrees, over the whole parameter vector):
//   angle1 ∠(d, g_J), angle2 ∠(d, g_Ω') with the corrected g_Ω', angle3 ∠(g_J + g_Ω, g_J),
//   angle4 ∠(g_J + g_Ω, g_Ω) with the unmodified g_Ω.
// Every angle comes from the same few sums as the correction (⟨g_J, g_Ω⟩, ‖g_J‖², ‖g_Ω‖² per
// tensor), so a step costs one pass to measure and one to write d.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tether::reg {

enum class DtnhScope { global, tensor };
DtnhScope parse_dtnh_scope(const std::string& name);  // "global" | "tensor", else an error naming --dtnh-scope

struct DtnhStep {
  double angle1 = 0, angle2 = 0, angle3 = 0, angle4 = 0;  // degrees; 90 when a vector is zero
  int64_t corrected = 0;  // global: 0 or 1; tensor: the number of tensors whose g_Ω was corrected
  int64_t groups = 0;     // global: 1; tensor: the number of tensors
};

// g_j[k] (contiguous, f32/f64) becomes d in place; g_omega[k] is g_Ω for the same tensor
// (undefined: zero there, e.g. a parameter no penalty touches), left unchanged.
DtnhStep dtnh_direction(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega, DtnhScope scope);

}  // namespace tether::reg
