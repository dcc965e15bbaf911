// CPU matrix products on Eigen's GEMM: gemm on 2-D strided views, and NumPy-style matmul
// (1-D operands, batched with broadcast batch dims, optional transposes).
//
// Every operand is brought to one form, a row-major matrix with unit inner stride and any
// leading stride, used as M or M^T: a view with unit stride in dim 0 (a transposed view) is
// the transpose of such a matrix, so it costs only a flipped flag (core/matmul_plan.h, with the
// shapes and batch layout of matmul, shared with the CUDA back end). Eigen spreads one product
// over the OpenMP threads by itself (and stays single-threaded inside a parallel region).

// GCC 12 emits false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 packet code
// (_mm512_undefined_* used as a don't-care operand); silence them for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
// With -march=native on AMD Zen 4, GCC 12 tunes for znver3 and folds the lhs loads of
// Eigen's GEBP micro-kernel into every FMA (12 x 64-byte loads per 12 FMAs), which makes the
// kernel load-bound at ~65% of peak; Ice Lake tuning keeps them in registers (~85%).
// Applies to everything in this file, including the Eigen templates instantiated here.
#pragma GCC target("tune=icelake-server")
#endif

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>

#include "core/cpu/gemm_raw.h"
#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/matmul_plan.h"

namespace tether::cpu {

namespace {

// C = alpha op(A) op(B) + beta C with A, B, C as Mats (op also folds in the Mats' own flags).
template <typename T>
void gemm_mats(bool ta, bool tb, T alpha, const Mat<T>& a, const Mat<T>& b, T beta, const Mat<T>& c) {
  const bool ea = ta != a.trans, eb = tb != b.trans;  // effective transposes of the raw matrices
  const int64_t M = ea ? a.cols : a.rows, K = ea ? a.rows : a.cols;
  const int64_t N = eb ? b.rows : b.cols;
  if (!c.trans) {
    gemm_raw<T>(ea, eb, M, N, K, alpha, a.ptr, a.ld, b.ptr, b.ld, beta, c.ptr, c.ld);
  } else {
    // C is stored transposed: C^T = op(B)^T op(A)^T.
    gemm_raw<T>(!eb, !ea, N, M, K, alpha, b.ptr, b.ld, a.ptr, a.ld, beta, c.ptr, c.ld);
  }
}

template <typename T>
void gemm_typed(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta,
                const Tensor& c) {
  const int64_t M = c.size(0), N = c.size(1);  // op(a) op(b) has c's shape (checked by the op front)
  Tensor keep_a, keep_b;
  const Mat<T> ma = operand<T>(a, keep_a), mb = operand<T>(b, keep_b);
  Mat<T> mc;
  if (as_mat<T>(c.data<T>(), M, N, c.stride(0), c.stride(1), mc)) {
    gemm_mats<T>(ta, tb, T(alpha), ma, mb, T(beta), mc);
    return;
  }
  // C has no unit stride: compute into a contiguous copy and write it back.
  Tensor tmp = beta == 0 ? Tensor::empty(c.shape(), c.dtype()) : ops::contiguous(c).clone();
  as_mat<T>(tmp.data<T>(), M, N, N, 1, mc);
  gemm_mats<T>(ta, tb, T(alpha), ma, mb, T(beta), mc);
  ops::copy_(c, tmp);
}

template <typename T>
Tensor matmul_typed(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const MatmulPlan plan = plan_matmul(a_in, b_in, trans_a, trans_b);
  const Tensor &a = plan.a, &b = plan.b;
  const bool ta = plan.ta, tb = plan.tb;
  const int64_t M = plan.M, N = plan.N, K = plan.K, count = plan.count;
  const Shape& batch = plan.batch;
  Tensor out = Tensor::empty(plan.out_shape, a.dtype());

  T* o = out.data<T>();
  if (count == 0 || M == 0 || N == 0) {
    // nothing to compute
  } else if (K == 0) {
    ops::fill_(out, 0.0);
  } else {
    const Shape off_a = batch_offsets(a, batch), off_b = batch_offsets(b, batch);
    const bool b_shared = std::all_of(off_b.begin(), off_b.end(), [&](int64_t v) { return v == off_b[0]; });
    const bool a_rows = K <= 1 || a.stride(-1) == 1;
    int64_t lda = 0;
    Mat<T> mb;
    if (count > 1 && b_shared && !ta && a_rows && fold_batch_into_rows(a, batch, lda) &&
        as_mat<T>(b.data<T>() + off_b[0], b.size(-2), b.size(-1), b.stride(-2), b.stride(-1), mb)) {
      // One right operand for the whole batch (x [.., K] times a weight): one big GEMM.
      const Mat<T> ma{a.data<T>() + off_a[0], count * M, K, std::max(lda, K), false};
      gemm_mats<T>(false, tb, T(1), ma, mb, T(0), Mat<T>{o, count * M, N, N, false});
    } else {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      auto one = [&](int64_t i) {
        Mat<T> ma, mbi;
        as_mat<T>(const_cast<T*>(pa) + off_a[i], a.size(-2), a.size(-1), a.stride(-2), a.stride(-1), ma);
        as_mat<T>(const_cast<T*>(pb) + off_b[i], b.size(-2), b.size(-1), b.stride(-2), b.stride(-1), mbi);
        gemm_mats<T>(ta, tb, T(1), ma, mbi, T(0), Mat<T>{o + i * M * N, M, N, N, false});
      };
      // Many products: one per thread, each single-threaded (no synchronisation inside
      // Eigen), unless that balances badly and the products are big enough for Eigen's
      // own threads to pay off.
      const int nt = omp_get_max_threads();
      const double flops = double(M) * double(N) * double(K);
      const bool per_thread = nt > 1 && !omp_in_parallel() && count >= nt &&
                              (count % nt == 0 || count >= 4 * nt || flops < 128.0 * 128 * 128);
      if (per_thread) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < count; ++i) one(i);
      } else {
        for (int64_t i = 0; i < count; ++i) one(i);
      }
    }
  }
  return ops::view(out, plan.final_shape);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c) {
  dispatch_float(a.dtype(), "gemm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    gemm_typed<scalar_t>(trans_a, trans_b, alpha, a, b, beta, c);
  });
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  return dispatch_float(a.dtype(), "matmul", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    return matmul_typed<scalar_t>(a, b, trans_a, trans_b);
  });
}

}  // namespace tether::cpu
