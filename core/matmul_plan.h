// Matrix-product planning shared by the CPU (core/cpu/gemm.cpp) and CUDA (core/cuda/gemm.cu)
// back ends: how a 2-D strided view maps onto a row-major matrix used as M or M^T (Mat,
// as_mat), NumPy matmul's operand and result shapes (MatmulPlan), the element offsets of
// every batch entry, and when a batch folds into the rows of one big matrix. Host code only;
// the products themselves stay in the back ends.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/ops.h"

namespace tether {

// A 2-D view as a row-major matrix `ptr[rows, cols]` (leading stride ld) used transposed or not.
template <typename T>
struct Mat {
  T* ptr = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  bool trans = false;  // the view is ptr^T
};

// How a view [r, c] with strides (s0, s1) maps onto a Mat; false when neither dim has unit
// stride (or rows overlap), and the caller must copy.
template <typename T>
bool as_mat(T* ptr, int64_t r, int64_t c, int64_t s0, int64_t s1, Mat<T>& m) {
  if (c <= 1 || s1 == 1) {  // row-major
    const int64_t ld = r <= 1 ? std::max<int64_t>(c, 1) : s0;
    if (ld < c) return false;
    m = {ptr, r, c, ld, false};
    return true;
  }
  if (r <= 1 || s0 == 1) {  // column-major: the transpose of a row-major [c, r]
    const int64_t ld = s1;
    if (ld < r) return false;
    m = {ptr, c, r, ld, true};
    return true;
  }
  return false;
}

// The 2-D tensor `t` as a Mat; through a contiguous copy (kept alive in `keep`) when needed.
template <typename T>
Mat<T> operand(const Tensor& t, Tensor& keep) {
  Mat<T> m;
  if (as_mat<T>(t.data<T>(), t.size(0), t.size(1), t.stride(0), t.stride(1), m)) return m;
  keep = ops::contiguous(t);
  as_mat<T>(keep.data<T>(), t.size(0), t.size(1), keep.stride(0), keep.stride(1), m);
  return m;
}

// NumPy matmul of a [.., M, K] and b [.., K, N], optional transposes: a 1-D left operand is a
// row [1, K], a 1-D right operand a column [K, 1] (their transpose flags are dropped) and
// the added dim is dropped from the result. Batch dims broadcast.
struct MatmulPlan {
  Tensor a, b;  // the operands as matrices, copied when their matrices have no unit stride
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0;
  Shape batch;        // the broadcast batch dims
  int64_t count = 0;  // batch entries
  Shape out_shape;    // [batch.., M, N]: what the back end computes into (contiguous)
  Shape final_shape;  // the result: out_shape without the dims of 1-D operands
};
// Checks the inner dims and the batch broadcast (the messages of ops::matmul).
MatmulPlan plan_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

// Element offsets of every batch entry of `t` (whose leading dims broadcast to `batch`).
Shape batch_offsets(const Tensor& t, const Shape& batch);

// When `t`'s batch dims (broadcast to `batch`) and its dim -2 merge into one dim, a batch of
// [M, K] matrices is one [batch*M, K] matrix: returns true and that dim's stride in `ld`.
bool fold_batch_into_rows(const Tensor& t, const Shape& batch, int64_t& ld);

}  // namespace tether
