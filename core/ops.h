// The op front: every raw (not autograd-recorded) tensor operation has one entry point here.
// Each switches on the device once and calls the CPU kernel (core/cpu/) or, when built with
// CUDA, the CUDA kernel (core/cuda/) of the same signature, so one test can call both.
//
// Conventions
// - Functions returning a Tensor allocate their result (contiguous, same device and dtype).
// - Backward kernels write into a caller-provided tensor; `accumulate` = true adds to its
//   contents (beta = 1 in BLAS/cuDNN terms) instead of overwriting (beta = 0).
// - Differentiable versions that record the graph live in autograd/ops.h.
#pragma once
#include <array>
#include <optional>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tether::ops {

// ---- copies and layout ------------------------------------------------------------
Tensor contiguous(const Tensor& x);          // x itself when already contiguous
void copy_(const Tensor& dst, const Tensor& src);  // same shape; any strides/dtypes/devices
Tensor cast(const Tensor& x, DType dtype);
void fill_(const Tensor& dst, double value);
// Views (share storage). Negative dims count from the end.
Tensor view(const Tensor& x, Shape shape);     // needs compatible strides; one dim may be -1
Tensor reshape(const Tensor& x, Shape shape);  // a view when possible, else a copy
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int dim, int64_t index);  // drops `dim`
Tensor unsqueeze(const Tensor& x, int dim);
Tensor squeeze(const Tensor& x, int dim);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast view (stride 0)
Tensor cat(const std::vector<Tensor>& xs, int dim);

// ---- elementwise (broadcasting, NumPy rules) ------------------------------------------
enum class Unary { neg, exp, log, sqrt, abs, sign, relu, sigmoid, silu, tanh, square, reciprocal };
enum class Binary { add, sub, mul, div, pow, maximum, minimum };
Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor pow_scalar(const Tensor& x, double p);
Tensor clamp(const Tensor& x, double lo, double hi);  // use +-inf for one-sided
// Gradient of a unary op: grad * f'(x), with y = f(x) where that is cheaper. For the ops of
// derivative_needs_only_output (relu, sigmoid, tanh, exp, sqrt, reciprocal) x may be undefined,
// so a backward node need not keep the op's input alive.
Tensor unary_backward(Unary op, const Tensor& grad, const Tensor& x, const Tensor& y);
inline bool derivative_needs_only_output(Unary op) {
  return op == Unary::relu || op == Unary::sigmoid || op == Unary::tanh || op == Unary::exp || op == Unary::sqrt ||
         op == Unary::reciprocal;
}
// grad * (lo <= x <= hi)
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi);
// y += alpha * x (same shape; y contiguous). The workhorse of gradient accumulation.
void axpy_(const Tensor& y, double alpha, const Tensor& x);
// y *= s
void scale_(const Tensor& y, double s);

// ---- reductions ---------------------------------------------------------------------
// `dims` empty = all dims. keepdim keeps reduced dims as size 1.
Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);  // i64, first maximum on ties
// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);
// Whole-tensor scalars, returned on the host in double precision.
double sum_all(const Tensor& x);
double dot(const Tensor& a, const Tensor& b);     // same shape
double norm(const Tensor& x, double p = 2.0);     // p-norm of all elements; p = inf: max |x|

// ---- matrix products (Eigen GEMM on the CPU, cuBLAS on CUDA) ---------------------------
// C = alpha * op(A) op(B) + beta * C for 2-D row-major views (any strides with unit inner stride).
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c);
// [.., M, K] x [.., K, N] -> [.., M, N]; batch dims broadcast; 1-D operands as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// ---- convolution (im2col + GEMM on the CPU, cuDNN on CUDA) -----------------------------
struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
// x [N, C, H, W], w [O, C/groups, kh, kw], bias [O] or undefined.
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                          const Tensor& grad_x, bool accumulate);
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p,
                            const Tensor& grad_w, bool accumulate);
void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate);

// ---- pooling ------------------------------------------------------------------------
struct Pool2dParams {
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
};
Shape pool2d_output_shape(const Shape& x, const Pool2dParams& p);
// Returns y; `indices` (i64, flat h*W+w within each plane) receives the argmax positions.
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices);
void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x,
                         bool accumulate);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p);
void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x,
                         bool accumulate);
// PyTorch's bins: [floor(i*H/OH), ceil((i+1)*H/OH)).
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate);

// ---- batch normalisation (over N, H, W per channel; x is [N, C] or [N, C, H, W]) ---------
// training: normalise with batch statistics and update running_mean/var in place (when
// defined) with PyTorch's momentum rule and unbiased variance; else use the running stats.
// save_mean/save_invstd receive the statistics used (for backward).
Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, Tensor* save_mean, Tensor* save_invstd);
// Any of grad_x/grad_weight/grad_bias may be undefined (not needed).
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         bool accumulate);

// ---- softmax and losses -----------------------------------------------------------------
Tensor softmax(const Tensor& x, int dim);
Tensor log_softmax(const Tensor& x, int dim);
void softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                      bool accumulate);
void log_softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                          bool accumulate);
enum class Reduction { none, mean, sum };
// Fused, numerically stable CE over logits [N, K] and targets i64 [N], with PyTorch's label
// smoothing: loss_i = (1-s)(-log p_{y_i}) + (s/K) sum_k (-log p_k).
// `log_probs` receives log_softmax(logits) for the backward.
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs);
// grad_loss: scalar (mean/sum) or [N] (none).
void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate);

// ---- random (counter-based Philox: same values whatever the thread count or device) -------
void uniform_(const Tensor& t, double lo, double hi, Generator& gen);
void normal_(const Tensor& t, double mean, double std, Generator& gen);
void bernoulli_(const Tensor& t, double p, Generator& gen);  // 1 with probability p, else 0
// Inverted-dropout mask: 1/(1-p) with probability 1-p, else 0.
Tensor dropout_mask(const Shape& shape, double p, DType dtype, Device device, Generator& gen);

}  // namespace tether::ops
