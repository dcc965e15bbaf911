// CUDA matrix products on cuBLAS, mirroring core/cpu/gemm.cpp: gemm on 2-D strided views, and
// NumPy-style matmul (1-D operands, batched with broadcast batch dims, optional transposes).
//
// Operands take the CPU's form: a row-major matrix with unit inner stride and any leading
// stride, used as M or M^T (a view with unit stride in dim 0 is the transpose of such a
// matrix, so it costs only a flipped flag). cuBLAS is column-major, where a row-major buffer
// reads as its transpose, so the row-major C = op(A) op(B) runs as the column-major
// C^T = op(B)^T op(A)^T: the same buffers and flags, the operands swapped.
// Batches run as one strided-batched call; an operand whose batch entries are not equally
// spaced (broadcast along some batch dims only) is materialised first.
// f32 runs cublasGemmEx in strict fp32, or in TF32 under cuda_math().tf32_matmul; f64 runs
// cublasDgemm. The 64-bit-index entry points take any size; scalars are in host memory.
#include <algorithm>
#include <type_traits>

#include "core/cuda/common.h"
#include "core/cuda/kernels.h"

namespace tether::cuda {

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

// `count` products whose operands lie a, b and c elements apart (0: shared by all).
struct Batch {
  int64_t count = 1;
  int64_t a = 0, b = 0, c = 0;
};

// C = beta C over `count` matrices [rows, cols] (leading stride ld, `stride` apart); beta 0
// writes zeros without reading C (the CPU's setZero: NaN in C is gone).
template <typename T>
__global__ void scale_matrices(T* c, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t n, T beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = i % cols, r = (i / cols) % rows, b = i / (cols * rows);
    T& v = c[b * stride + r * ld + col];
    v = beta == T(0) ? T(0) : v * beta;
  }
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// C[M, N] = alpha op(A) op(B) + beta C on raw row-major device matrices (ld = leading stride),
// for every entry of `batch`. op(A) is [M, K]: A is [M, K] (lda >= K) or, transposed, [K, M].
// Like the CPU's gemm_raw, K == 0 or alpha == 0 only scales C (A and B are not read).
template <typename T>
void gemm_raw(int dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Batch& batch) {
  if (M == 0 || N == 0 || batch.count == 0) return;
  if (K == 0 || alpha == T(0)) {
    if (beta == T(1)) return;
    const int64_t n = batch.count * M * N;
    scale_matrices<T><<<blocks_for(n), kThreads, 0, stream(dev)>>>(C, M, N, ldc, batch.c, n, beta);
    TETHER_CHECK_LAUNCH("scale_matrices");
    return;
  }
  cublasHandle_t h = cublas(dev);
  TETHER_CHECK_CUBLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  // Column-major: C^T[N, M] = op(B)^T op(A)^T, where the buffers of B and A read as B^T and A^T.
  if constexpr (std::is_same_v<T, float>) {
    const cublasComputeType_t compute = cuda_math().tf32_matmul ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    if (batch.count == 1) {
      TETHER_CHECK_CUBLAS(cublasGemmEx_64(h, op(tb), op(ta), N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F,
                                          lda, &beta, C, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT));
    } else {
      TETHER_CHECK_CUBLAS(cublasGemmStridedBatchedEx_64(h, op(tb), op(ta), N, M, K, &alpha, B, CUDA_R_32F, ldb,
                                                        batch.b, A, CUDA_R_32F, lda, batch.a, &beta, C, CUDA_R_32F,
                                                        ldc, batch.c, batch.count, compute, CUBLAS_GEMM_DEFAULT));
    }
  } else {
    static_assert(std::is_same_v<T, double>);
    if (batch.count == 1) {
      TETHER_CHECK_CUBLAS(cublasDgemm_64(h, op(tb), op(ta), N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    } else {
      TETHER_CHECK_CUBLAS(cublasDgemmStridedBatched_64(h, op(tb), op(ta), N, M, K, &alpha, B, ldb, batch.b, A, lda,
                                                       batch.a, &beta, C, ldc, batch.c, batch.count));
    }
  }
}

// C = alpha op(A) op(B) + beta C with A, B, C as Mats (op also folds in the Mats' own flags).
template <typename T>
void gemm_mats(int dev, bool ta, bool tb, T alpha, const Mat<T>& a, const Mat<T>& b, T beta, const Mat<T>& c,
               const Batch& batch = {}) {
  const bool ea = ta != a.trans, eb = tb != b.trans;  // effective transposes of the raw matrices
  const int64_t M = ea ? a.cols : a.rows, K = ea ? a.rows : a.cols;
  const int64_t N = eb ? b.rows : b.cols;
  if (!c.trans) {
    gemm_raw<T>(dev, ea, eb, M, N, K, alpha, a.ptr, a.ld, b.ptr, b.ld, beta, c.ptr, c.ld, batch);
  } else {
    // C is stored transposed: C^T = op(B)^T op(A)^T.
    gemm_raw<T>(dev, !eb, !ea, N, M, K, alpha, b.ptr, b.ld, a.ptr, a.ld, beta, c.ptr, c.ld,
                Batch{batch.count, batch.b, batch.a, batch.c});
  }
}

template <typename T>
void gemm_typed(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta, const Tensor& c) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t Kb = tb ? b.size(1) : b.size(0), N = tb ? b.size(0) : b.size(1);
  TETHER_CHECK(K == Kb && c.size(0) == M && c.size(1) == N, "gemm: op(a) is [", M, ", ", K, "], op(b) is [",
               Kb, ", ", N, "], c is ", shape_str(c.shape()));
  const int dev = device_of(c);
  Tensor keep_a, keep_b;
  const Mat<T> ma = operand<T>(a, keep_a), mb = operand<T>(b, keep_b);
  Mat<T> mc;
  if (as_mat<T>(c.data<T>(), M, N, c.stride(0), c.stride(1), mc)) {
    gemm_mats<T>(dev, ta, tb, T(alpha), ma, mb, T(beta), mc);
    return;
  }
  // C has no unit stride: compute into a contiguous copy and write it back.
  Tensor tmp = beta == 0 ? Tensor::empty(c.shape(), c.dtype(), c.device()) : ops::contiguous(c).clone();
  as_mat<T>(tmp.data<T>(), M, N, N, 1, mc);
  gemm_mats<T>(dev, ta, tb, T(alpha), ma, mb, T(beta), mc);
  ops::copy_(c, tmp);
}

// NumPy broadcasting of two batch shapes (the CPU's broadcast_shapes, same message).
Shape broadcast_batch(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TETHER_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
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

// The batch offsets of `t` when equally spaced (step in `step`); otherwise `t` becomes a
// contiguous copy of its broadcast to `batch` (broadcast along some batch dims only), whose
// entries are one matrix apart.
Shape spaced_offsets(Tensor& t, const Shape& batch, int64_t& step) {
  Shape off = batch_offsets(t, batch);
  step = off.size() > 1 ? off[1] - off[0] : 0;
  bool spaced = true;
  for (size_t i = 1; i < off.size() && spaced; ++i) spaced = off[i] - off[i - 1] == step;
  if (spaced) return off;
  Shape full = batch;
  full.push_back(t.size(-2));
  full.push_back(t.size(-1));
  t = ops::contiguous(ops::expand(t, full));
  off = batch_offsets(t, batch);
  step = t.size(-2) * t.size(-1);
  return off;
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
  const Shape batch = broadcast_batch(Shape(a.shape().begin(), a.shape().end() - 2),
                                      Shape(b.shape().begin(), b.shape().end() - 2));
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  const int64_t count = shape_numel(batch);
  const int dev = device_of(out);

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
    TETHER_CHECK_CUDA(cudaMemsetAsync(o, 0, static_cast<size_t>(out.numel()) * sizeof(T), stream(dev)));
  } else {
    const Shape off_b = batch_offsets(b, batch);
    const bool b_shared = std::all_of(off_b.begin(), off_b.end(), [&](int64_t v) { return v == off_b[0]; });
    const bool a_rows = K <= 1 || a.stride(-1) == 1;
    int64_t lda = 0;
    Mat<T> mb;
    if (count > 1 && b_shared && !ta && a_rows && fold_batch_into_rows(a, batch, lda) &&
        as_mat<T>(b.data<T>() + off_b[0], b.size(-2), b.size(-1), b.stride(-2), b.stride(-1), mb)) {
      // One right operand for the whole batch (x [.., K] times a weight): one big GEMM.
      const Shape off_a = batch_offsets(a, batch);
      const Mat<T> ma{a.data<T>() + off_a[0], count * M, K, std::max(lda, K), false};
      gemm_mats<T>(dev, false, tb, T(1), ma, mb, T(0), Mat<T>{o, count * M, N, N, false});
    } else {
      // One strided-batched product: every operand's entries equally spaced.
      Batch bt{count, 0, 0, M * N};
      const Shape off_a = spaced_offsets(a, batch, bt.a), off_b2 = spaced_offsets(b, batch, bt.b);
      Mat<T> ma, mbi;
      as_mat<T>(a.data<T>() + off_a[0], a.size(-2), a.size(-1), a.stride(-2), a.stride(-1), ma);
      as_mat<T>(b.data<T>() + off_b2[0], b.size(-2), b.size(-1), b.stride(-2), b.stride(-1), mbi);
      gemm_mats<T>(dev, ta, tb, T(1), ma, mbi, T(0), Mat<T>{o, M, N, N, false}, bt);
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

}  // namespace tether::cuda
