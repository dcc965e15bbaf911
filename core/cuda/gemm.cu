// CUDA matrix products on cuBLAS, mirroring core/cpu/gemm.cpp: gemm on 2-D strided views, and
// NumPy-style matmul (1-D operands, batched with broadcast batch dims, optional transposes).
//
// Operands take the CPU's form: a row-major matrix with unit inner stride and any leading
// stride, used as M or M^T (a view with unit stride in dim 0 is the transpose of such a
// matrix, so it costs only a flipped flag; core/matmul_plan.h, shared with the CPU). cuBLAS is column-major, where a row-major buffer
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
#include "core/matmul_plan.h"

namespace tether::cuda {

namespace {

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
  const int64_t M = c.size(0), N = c.size(1);  // op(a) op(b) has c's shape (checked by the op front)
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
Tensor matmul_typed(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const MatmulPlan plan = plan_matmul(a_in, b_in, trans_a, trans_b);
  Tensor a = plan.a, b = plan.b;  // spaced_offsets may replace them by contiguous copies
  const bool ta = plan.ta, tb = plan.tb;
  const int64_t M = plan.M, N = plan.N, K = plan.K, count = plan.count;
  const Shape& batch = plan.batch;
  Tensor out = Tensor::empty(plan.out_shape, a.dtype(), a.device());
  const int dev = device_of(out);

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

}  // namespace tether::cuda
