// SPEC 3's projections (regularizers/projection.h) for CUDA tensors, over a whole list of tensors
// at once (core/cuda/multi_tensor.cuh), with projection.cpp's arithmetic (norms in double, the
// rescaling w ← c + (w − c)·s with the difference in double). The projections never wait for the
// device (they run after every optimizer step); row_l1_norms copies its result back once.
// projection.cpp calls these for CUDA tensors; built without CUDA, regularizers/fused_cuda_stub.cpp
// defines them to throw.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace tether::reg::cuda {

// A tensor rewritten in place (contiguous, f32/f64), its centre (undefined: 0; else the same
// shape, dtype and device, contiguous) and a finite radius > 0.
struct Ball {
  Tensor w, center;
  double radius;
};

// Per tensor W ← c + (W − c) / max(1, ‖W − c‖_F / radius): one launch measures ‖W − c‖² as
// per-chunk partials, a second adds each tensor's partials (a fixed tree, the same in every
// block) and rescales where the ball binds.
void project_l2_balls(const std::vector<Ball>& balls);
// Per row r: Δ_r ← Δ_r / max(1, ‖Δ_r‖₁ / radius): one launch, a warp measures and rescales a row.
void project_row_l1_balls(const std::vector<Ball>& balls);
// ‖w_r − c_r‖₁ for every row of every (w, c), in order (one launch, one copy back).
std::vector<std::vector<double>> row_l1_norms(const std::vector<Ball>& tensors);

}  // namespace tether::reg::cuda
