// C = alpha op(A) op(B) + beta C on raw row-major matrices through Eigen's GEMM: the one
// GEMM entry point of the CPU kernels (core/cpu/gemm.cpp for tensors, core/cpu/conv.cpp for
// im2col columns). Include it after the file's `#pragma GCC target` (see gemm.cpp), so the
// Eigen templates are instantiated with that tuning.
#pragma once
#include <Eigen/Core>
#include <cstdint>

namespace tether::cpu {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using CMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// C[M, N] = alpha op(A) op(B) + beta C on raw row-major matrices (ld = leading stride).
// op(A) is [M, K]: A is [M, K] (lda >= K) or, transposed, [K, M]. beta == 0 never reads C.
template <typename T>
void gemm_raw(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  MMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K == 0 || alpha == T(0)) {
    if (beta == T(0)) c.setZero();
    else if (beta != T(1)) c *= beta;
    return;
  }
  CMap<T> a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  CMap<T> b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  // Eigen evaluates `c = alpha a b` as setZero + accumulate, so NaN in an unread C is gone.
  auto run = [&](auto&& pa, auto&& pb) {
    if (beta == T(0)) {
      c.noalias() = alpha * pa * pb;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * pa * pb;
    }
  };
  if (!ta && !tb) run(a, b);
  else if (ta && !tb) run(a.transpose(), b);
  else if (!ta && tb) run(a, b.transpose());
  else run(a.transpose(), b.transpose());
}

}  // namespace tether::cpu
