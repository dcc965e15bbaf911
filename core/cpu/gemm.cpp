// CPU matrix products on Eigen's GEMM: gemm on 2-D strided views, and NumPy-style matmul
// (1-D operands, batched with broadcast batch dims, optional transposes).
//
// Every operand is brought to one form, a row-major matrix with unit inner stride and any
// leading stride, used as M or M^T: a view with unit stride in dim 0 (a transposed view) is
// the transpose of such a matrix, so it costs only a flipped flag. Eigen spreads one product
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

namespace tether::cpu {

namespace {

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

template <typename T>
Mat<T> operand(const Tensor& t, Tensor& keep) {
  Mat<T> m;
  if (as_mat<T>(t.data<T>(), t.size(0), t.size(1), t.stride(0), t.stride(1), m)) return m;
  keep = ops::contiguous(t);
  as_mat<T>(keep.data<T>(), t.size(0), t.size(1), keep.stride(0), keep.stride(1), m);
  return m;
}

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
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t Kb = tb ? b.size(1) : b.size(0), N = tb ? b.size(0) : b.size(1);
  TETHER_CHECK(K == Kb && c.size(0) == M && c.size(1) == N, "gemm: op(a) is [", M, ", ", K, "], op(b) is [",
               Kb, ", ", N, "], c is ", shape_str(c.shape()));
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

// Element offsets of every batch entry of `t` (whose leading dims broadcast to `batch`).
Shape batch_offsets(const Tensor& t, const Shape& batch) {
  const int nb = static_cast<int>(batch.size());
  const int lead = nb - (t.dim() - 2);
  Shape strides(nb, 0);
  for (int d = 0; d < t.dim() - 2; ++d)
    if (t.size(d) != 1) strides[d + lead] = t.stride(d);
  const int64_t count = shape_numel(batch);
  Shape off(count, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, o = 0;
    for (int d = nb - 1; d >= 0; --d) {
      o += (rem % batch[d]) * strides[d];
      rem /= batch[d];
    }
    off[i] = o;
  }
  return off;
}

// When `t`'s batch dims (broadcast to `batch`) and its dim -2 merge into one dim, a batch of
// [M, K] matrices is one [batch*M, K] matrix: returns true and that dim's stride in `ld`.
bool fold_batch_into_rows(const Tensor& t, const Shape& batch, int64_t& ld) {
  const int lead = static_cast<int>(batch.size()) - (t.dim() - 2);
  std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride), outermost first, size > 1
  for (size_t d = 0; d < batch.size(); ++d) {
    if (batch[d] == 1) continue;
    const int td = static_cast<int>(d) - lead;
    if (td < 0 || t.size(td) != batch[d]) return false;  // broadcast along this dim
    dims.push_back({batch[d], t.stride(td)});
  }
  if (t.size(-2) != 1) dims.push_back({t.size(-2), t.stride(-2)});
  for (size_t i = 0; i + 1 < dims.size(); ++i)
    if (dims[i].second != dims[i + 1].first * dims[i + 1].second) return false;
  ld = dims.empty() ? t.size(-1) : dims.back().second;
  // Rows closer than a row's length overlap (a batch dim broadcast with stride 0 to [B, 1, K]
  // has ld 0): not one matrix, so the caller takes the batched path.
  return ld >= t.size(-1);
}

template <typename T>
Tensor matmul_typed(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  // NumPy: a 1-D left operand is a row [1, K], a 1-D right operand a column [K, 1]; the
  // added dim is dropped from the result. Transpose flags only apply to matrices.
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  Tensor a = a_vec ? ops::unsqueeze(a_in, 0) : a_in;
  Tensor b = b_vec ? ops::unsqueeze(b_in, 1) : b_in;
  if (a_vec) ta = false;
  if (b_vec) tb = false;
  const int64_t M = ta ? a.size(-1) : a.size(-2), K = ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = tb ? b.size(-1) : b.size(-2), N = tb ? b.size(-2) : b.size(-1);
  TETHER_CHECK(K == Kb, "matmul: inner dimensions differ: ", shape_str(a_in.shape()), (ta ? "^T" : ""), " x ",
               shape_str(b_in.shape()), (tb ? "^T" : ""));
  const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2));
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const int64_t count = shape_numel(batch);

  // Operands whose matrices are not row- or column-major (no unit stride, overlapping rows)
  // are copied once.
  auto needs_copy = [](const Tensor& t) {
    Mat<T> m;
    return !as_mat<T>(nullptr, t.size(-2), t.size(-1), t.stride(-2), t.stride(-1), m);
  };
  if (needs_copy(a)) a = ops::contiguous(a);
  if (needs_copy(b)) b = ops::contiguous(b);

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
  Shape final_shape = batch;
  if (!a_vec) final_shape.push_back(M);
  if (!b_vec) final_shape.push_back(N);
  return ops::view(out, final_shape);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c) {
  TETHER_CHECK(a.dtype() == b.dtype() && a.dtype() == c.dtype(), "gemm: dtypes differ (",
               dtype_name(a.dtype()), ", ", dtype_name(b.dtype()), ", ", dtype_name(c.dtype()), ")");
  dispatch_float(a.dtype(), "gemm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    gemm_typed<scalar_t>(trans_a, trans_b, alpha, a, b, beta, c);
  });
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  TETHER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands must have at least 1 dim, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  return dispatch_float(a.dtype(), "matmul", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    return matmul_typed<scalar_t>(a, b, trans_a, trans_b);
  });
}

}  // namespace tether::cpu
