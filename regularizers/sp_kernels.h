// Closed-form kernels of SPEC 2's weight-space penalties, one tensor at a time (contiguous, f32 or
// f64; a CUDA tensor goes to the fused kernels of regularizers/cuda/sp_fused.h, and values()
// takes a whole list of them in one fused call). Each returns the penalty's value V on that
// tensor, accumulated in double, and in the same pass over memory writes k·∂V/∂x into a
// gradient buffer: no autograd graph, no temporaries. Penalty::add_gradient (penalty.h) is built
// on them; the tests (tests/regularizers/test_closed_form.cpp) prove them equal to the autograd
// path of Penalty::terms.
//
// Δ = x − c (c undefined: c = 0, the head). F undefined: F = 1. Rows are SPEC 1's ([d0, rest];
// 1-D is [C, 1]; 0-d one row of one), p = row length.
//   squared_distance  V = Σ_j F_j Δ_j²                          ∂V/∂x = 2 F Δ
//   smooth_l1         V = Σ_j (√(Δ_j² + ε²) − ε)                 ∂V/∂x = Δ / √(Δ² + ε²)
//                     (each term evaluated as Δ²/(√(Δ²+ε²)+ε): no cancellation, exactly 0 at Δ = 0)
//   group_lasso       V = Σ_r √p (√(q_r + ε²) − ε), q_r = Σ_{j∈r} F_j Δ_j²  (as √p q_r/(n_r + ε))
//                                                                ∂V/∂x_j = √p F_j Δ_j / n_r, n_r = √(q_r + ε²)
//   mars              V = max_r Σ_{j∈r} |Δ_j|                    ∂V/∂x = sign(Δ) on the first maximising
//                                                                row, 0 elsewhere (SPEC 2's subgradient)
//
// Determinism (CPU): a tensor is cut into fixed chunks (2^15 elements, or whole rows totalling about
// that); chunks run in parallel (OpenMP) and their partial values are added in chunk order, so
// value and gradient are bit-identical for any thread count. Tensors of one chunk run serially
// (no parallel region). Nothing is allocated per call beyond a reused per-thread scratch.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace tether::reg::kernels {

// Where the gradient goes: undefined g = value only; otherwise g (same shape, dtype and device as
// x, contiguous) gets g += k·∂V/∂x, or g = k·∂V/∂x with `overwrite` (g's old contents are
// never read, so an uninitialised buffer is fine).
struct GradOut {
  Tensor g;
  double k = 1.0;
  bool overwrite = false;
};

double squared_distance(const Tensor& x, const Tensor& c, const Tensor& f, const GradOut& out = {});
double smooth_l1(const Tensor& x, const Tensor& c, double eps, const GradOut& out = {});
double group_lasso(const Tensor& x, const Tensor& c, const Tensor& f, double eps, const GradOut& out = {});
double mars(const Tensor& x, const Tensor& c, const GradOut& out = {});

// The same kernels by name, over many tensors: the value of `kind` on each operand set, in order,
// each gradient written as above (f is read by squared_distance and group_lasso, eps by
// smooth_l1 and group_lasso). CUDA tensors take one fused multi-tensor call for the whole list
// (one copy of the values back to the host); CPU tensors one kernel call each.
enum class Kind { squared_distance, smooth_l1, group_lasso, mars };
struct Operands {
  Tensor x, c, f;
  GradOut out;
};
std::vector<double> values(Kind kind, const std::vector<Operands>& items, double eps = 0);

}  // namespace tether::reg::kernels
