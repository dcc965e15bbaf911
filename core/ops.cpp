// The op front: argument checks shared by every back end, then one switch on the device.
// Metadata-only ops (views) live in core/views.cpp; kernels in core/cpu/ and core/cuda/.
#include "core/ops.h"

#include <cmath>
#include <limits>
#include <utility>

#include "core/cpu/kernels.h"
#ifdef TETHER_WITH_CUDA
#include "core/cuda/kernels.h"
#endif

namespace tether::ops {

namespace {
#ifndef TETHER_WITH_CUDA
[[noreturn]] void no_cuda_kernel(const char* op) {
  TETHER_FAIL("op '", op, "' on a CUDA tensor: this tether was built without the CUDA back end (configure with "
              "-DTETHER_CUDA=ON on a machine with the CUDA toolkit and cuDNN)");
}
#endif

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  TETHER_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(),
               " and ", b.device().str(), "); move them explicitly with .to()");
}
}  // namespace

// Every compute op goes through here: one switch on the device, the same call on both sides.
#ifdef TETHER_WITH_CUDA
#define TETHER_ON_DEVICE(device, fn, ...) ((device).is_cuda() ? cuda::fn(__VA_ARGS__) : cpu::fn(__VA_ARGS__))
#else
#define TETHER_ON_DEVICE(device, fn, ...) \
  ((device).is_cuda() ? (no_cuda_kernel(#fn), cpu::fn(__VA_ARGS__)) : cpu::fn(__VA_ARGS__))
#endif

// ---- copies ---------------------------------------------------------------------------
void copy_(const Tensor& dst, const Tensor& src) {
  TETHER_CHECK(dst.shape() == src.shape(), "copy_: shape ", shape_str(src.shape()), " into ",
               shape_str(dst.shape()));
  if (dst.device() == src.device()) return TETHER_ON_DEVICE(dst.device(), copy_, dst, src);
  // Across devices: bring src to dst's dtype and a contiguous layout on its own device, make one
  // transfer, then lay it out on dst's device if dst is strided.
  Tensor s = contiguous(cast(src, dst.dtype()));
  const size_t nbytes = s.numel() * element_size(s.dtype());
  if (dst.is_contiguous()) return copy_bytes(dst.raw_data(), dst.device(), s.raw_data(), s.device(), nbytes);
  Tensor staged = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
  copy_bytes(staged.raw_data(), staged.device(), s.raw_data(), s.device(), nbytes);
  TETHER_ON_DEVICE(dst.device(), copy_, dst, staged);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_(out, x);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  copy_(out, x);
  return out;
}

void fill_(const Tensor& dst, double value) { TETHER_ON_DEVICE(dst.device(), fill_, dst, value); }

// ---- elementwise ------------------------------------------------------------------------
Tensor unary(Unary op, const Tensor& x) { return TETHER_ON_DEVICE(x.device(), unary, op, x); }
Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
  check_same_device(a, b, "binary op");
  TETHER_CHECK(a.dtype() == b.dtype(), "binary op: dtypes differ (", dtype_name(a.dtype()), " and ",
               dtype_name(b.dtype()), ")");
  return TETHER_ON_DEVICE(a.device(), binary, op, a, b);
}
Tensor add_scalar(const Tensor& x, double s) { return TETHER_ON_DEVICE(x.device(), add_scalar, x, s); }
Tensor mul_scalar(const Tensor& x, double s) { return TETHER_ON_DEVICE(x.device(), mul_scalar, x, s); }
Tensor pow_scalar(const Tensor& x, double p) { return TETHER_ON_DEVICE(x.device(), pow_scalar, x, p); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  TETHER_CHECK(!(lo > hi), "clamp: lo ", lo, " > hi ", hi);
  return TETHER_ON_DEVICE(x.device(), clamp, x, lo, hi);
}
Tensor unary_backward(Unary op, const Tensor& grad, const Tensor& x, const Tensor& y) {
  const Shape& shape = x.defined() ? x.shape() : y.shape();
  TETHER_CHECK(grad.shape() == shape, "unary_backward: grad ", shape_str(grad.shape()), " for input ", shape_str(shape));
  TETHER_CHECK(x.defined() || (y.defined() && derivative_needs_only_output(op)),
               "unary_backward: this op needs its input x");
  check_same_device(grad, x.defined() ? x : y, "unary_backward");
  if (x.defined() && y.defined()) check_same_device(grad, y, "unary_backward");
  return TETHER_ON_DEVICE(grad.device(), unary_backward, op, grad, x, y);
}
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  check_same_device(grad, x, "clamp_backward");
  return TETHER_ON_DEVICE(x.device(), clamp_backward, grad, x, lo, hi);
}
void axpy_(const Tensor& y, double alpha, const Tensor& x) {
  check_same_device(y, x, "axpy_");
  TETHER_CHECK(y.shape() == x.shape(), "axpy_: shapes ", shape_str(y.shape()), " and ", shape_str(x.shape()));
  TETHER_CHECK(y.dtype() == x.dtype(), "axpy_: dtypes differ");
  TETHER_ON_DEVICE(y.device(), axpy_, y, alpha, x);
}
void scale_(const Tensor& y, double s) { TETHER_ON_DEVICE(y.device(), scale_, y, s); }

// ---- reductions ---------------------------------------------------------------------------
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return TETHER_ON_DEVICE(x.device(), sum, x, dims, keepdim);
}
// The sum scaled by 1/count on either device (NaN for an empty reduction).
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  Tensor s = sum(x, dims, keepdim);
  const int64_t count = s.numel() == 0 ? 0 : x.numel() / s.numel();
  scale_(s, count == 0 ? std::numeric_limits<double>::quiet_NaN() : 1.0 / static_cast<double>(count));
  return s;
}
Tensor amax(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  TETHER_CHECK(x.numel() > 0, "amax of an empty tensor");
  return TETHER_ON_DEVICE(x.device(), amax, x, dims, keepdim);
}
Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  TETHER_CHECK(x.numel() > 0, "argmax of an empty tensor");
  return TETHER_ON_DEVICE(x.device(), argmax, x, dim, keepdim);
}
Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.dim() - static_cast<int>(shape.size());
  TETHER_CHECK(lead >= 0, "sum_to: cannot reduce ", shape_str(x.shape()), " to ", shape_str(shape));
  std::vector<int> dims;
  for (int d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[d - lead] == 1 && x.size(d) != 1) dims.push_back(d);
    else TETHER_CHECK(shape[d - lead] == x.size(d), "sum_to: cannot reduce ", shape_str(x.shape()),
                      " to ", shape_str(shape));
  }
  Tensor s = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
  return reshape(s, shape);
}
double sum_all(const Tensor& x) { return TETHER_ON_DEVICE(x.device(), sum_all, x); }
double dot(const Tensor& a, const Tensor& b) {
  check_same_device(a, b, "dot");
  TETHER_CHECK(a.shape() == b.shape(), "dot: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  return TETHER_ON_DEVICE(a.device(), dot, a, b);
}
double norm(const Tensor& x, double p) {
  TETHER_CHECK(p > 0, "norm: p must be positive, got ", p);
  return TETHER_ON_DEVICE(x.device(), norm, x, p);
}

// ---- matrix products -----------------------------------------------------------------------
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c) {
  check_same_device(a, b, "gemm");
  check_same_device(a, c, "gemm");
  TETHER_CHECK(a.dim() == 2 && b.dim() == 2 && c.dim() == 2, "gemm: expects 2-D tensors, got ",
               shape_str(a.shape()), ", ", shape_str(b.shape()), ", ", shape_str(c.shape()));
  TETHER_CHECK(a.dtype() == b.dtype() && a.dtype() == c.dtype(), "gemm: dtypes differ (",
               dtype_name(a.dtype()), ", ", dtype_name(b.dtype()), ", ", dtype_name(c.dtype()), ")");
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  TETHER_CHECK(K == Kb && c.size(0) == M && c.size(1) == N, "gemm: op(a) is [", M, ", ", K, "], op(b) is [",
               Kb, ", ", N, "], c is ", shape_str(c.shape()));
  TETHER_ON_DEVICE(a.device(), gemm, trans_a, trans_b, alpha, a, b, beta, c);
}
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_same_device(a, b, "matmul");
  TETHER_CHECK(a.dtype() == b.dtype(), "matmul: dtypes differ");
  TETHER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands must have at least 1 dim, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  // The inner dims and the batch broadcast are checked by plan_matmul (core/matmul_plan.h).
  return TETHER_ON_DEVICE(a.device(), matmul, a, b, trans_a, trans_b);
}

// ---- convolution --------------------------------------------------------------------------
namespace {
// Both floating, one dtype, one device (a kernel must never be handed another device's pointer).
void check_float_same(const Tensor& a, const Tensor& b, const char* op) {
  check_same_device(a, b, op);
  TETHER_CHECK(is_floating(a.dtype()), op, ": expected f32/f64 tensors, got ", dtype_name(a.dtype()));
  TETHER_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ (", dtype_name(a.dtype()), " and ",
               dtype_name(b.dtype()), ")");
}
}  // namespace

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  TETHER_CHECK(x.size() == 4, "conv2d: input must be [N, C, H, W], got ", shape_str(x));
  TETHER_CHECK(w.size() == 4, "conv2d: weight must be [O, C/groups, kh, kw], got ", shape_str(w));
  TETHER_CHECK(p.groups >= 1 && x[1] % p.groups == 0 && w[0] % p.groups == 0,
               "conv2d: groups=", p.groups, " must divide in_channels=", x[1], " and out_channels=", w[0]);
  TETHER_CHECK(x[1] / p.groups == w[1], "conv2d: input has ", x[1], " channels, weight ", shape_str(w),
               " expects ", w[1] * p.groups, " (groups=", p.groups, ")");
  Shape out{x[0], w[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    TETHER_CHECK(p.stride[i] >= 1 && p.dilation[i] >= 1 && p.padding[i] >= 0, "conv2d: bad stride/dilation/padding");
    const int64_t span = p.dilation[i] * (w[2 + i] - 1) + 1;
    const int64_t len = x[2 + i] + 2 * p.padding[i] - span;
    TETHER_CHECK(len >= 0, "conv2d: kernel ", shape_str(w), " (dilation ", p.dilation[i],
                 ") larger than padded input ", shape_str(x));
    out[2 + i] = len / p.stride[i] + 1;
  }
  return out;
}
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_same_device(x, w, "conv2d");
  conv2d_output_shape(x.shape(), w.shape(), p);
  if (bias.defined())
    TETHER_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "conv2d: bias ", shape_str(bias.shape()),
                 " for ", w.size(0), " output channels");
  check_float_same(x, w, "conv2d");
  if (bias.defined()) check_float_same(x, bias, "conv2d (bias)");
  return TETHER_ON_DEVICE(x.device(), conv2d_forward, x, w, bias, p);
}
void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                          const Tensor& grad_x, bool accumulate) {
  check_float_same(grad_y, w, "conv2d_backward_data");
  check_float_same(grad_y, grad_x, "conv2d_backward_data");
  TETHER_CHECK(grad_y.shape() == conv2d_output_shape(grad_x.shape(), w.shape(), p), "conv2d_backward_data: grad_y ",
               shape_str(grad_y.shape()), " does not match input ", shape_str(grad_x.shape()), " and weight ",
               shape_str(w.shape()));
  TETHER_ON_DEVICE(w.device(), conv2d_backward_data, grad_y, w, p, grad_x, accumulate);
}
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p,
                            const Tensor& grad_w, bool accumulate) {
  check_float_same(grad_y, x, "conv2d_backward_weight");
  check_float_same(grad_y, grad_w, "conv2d_backward_weight");
  TETHER_CHECK(grad_y.shape() == conv2d_output_shape(x.shape(), grad_w.shape(), p), "conv2d_backward_weight: grad_y ",
               shape_str(grad_y.shape()), " does not match input ", shape_str(x.shape()), " and weight ",
               shape_str(grad_w.shape()));
  TETHER_ON_DEVICE(x.device(), conv2d_backward_weight, grad_y, x, p, grad_w, accumulate);
}
void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate) {
  check_float_same(grad_y, grad_b, "conv2d_backward_bias");
  TETHER_CHECK(grad_y.dim() == 4 && grad_b.dim() == 1 && grad_b.size(0) == grad_y.size(1),
               "conv2d_backward_bias: grad_y ", shape_str(grad_y.shape()), " and grad_b ", shape_str(grad_b.shape()));
  TETHER_ON_DEVICE(grad_y.device(), conv2d_backward_bias, grad_y, grad_b, accumulate);
}

// ---- pooling ----------------------------------------------------------------------------------
// PyTorch's pooling_output_shape: with ceil_mode, the last window must start inside the
// input or the left padding.
Shape pool2d_output_shape(const Shape& x, const Pool2dParams& p) {
  TETHER_CHECK(x.size() == 4, "pool2d: input must be [N, C, H, W], got ", shape_str(x));
  Shape out{x[0], x[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    TETHER_CHECK(p.kernel[i] >= 1 && p.stride[i] >= 1 && p.dilation[i] >= 1, "pool2d: bad kernel/stride/dilation");
    TETHER_CHECK(p.padding[i] >= 0 && 2 * p.padding[i] <= p.kernel[i], "pool2d: padding ", p.padding[i],
                 " must be at most half the kernel size ", p.kernel[i]);
    const int64_t span = p.dilation[i] * (p.kernel[i] - 1) + 1;
    const int64_t num = x[2 + i] + 2 * p.padding[i] - span + (p.ceil_mode ? p.stride[i] - 1 : 0);
    TETHER_CHECK(num >= 0, "pool2d: the output would be empty: a window of ", span, " does not fit the padded input ", shape_str(x));
    int64_t o = num / p.stride[i] + 1;
    if (p.ceil_mode && (o - 1) * p.stride[i] >= x[2 + i] + p.padding[i]) --o;
    TETHER_CHECK(o >= 1, "pool2d: output would be empty for input ", shape_str(x));
    out[2 + i] = o;
  }
  return out;
}
namespace {
void check_nchw(const Tensor& t, const char* op, const char* what) {
  TETHER_CHECK(t.dim() == 4, op, ": ", what, " must be [N, C, H, W], got ", shape_str(t.shape()));
}
// The pair (grad_y, grad_x) of a pooling backward: NCHW, same dtype, same N and C.
void check_pool_backward(const Tensor& grad_y, const Tensor& grad_x, const char* op) {
  check_nchw(grad_y, op, "grad_y");
  check_nchw(grad_x, op, "grad_x");
  TETHER_CHECK(grad_y.dtype() == grad_x.dtype(), op, ": grad_y is ", dtype_name(grad_y.dtype()), " but grad_x is ",
               dtype_name(grad_x.dtype()));
  TETHER_CHECK(grad_y.size(0) == grad_x.size(0) && grad_y.size(1) == grad_x.size(1), op, ": grad_y ",
               shape_str(grad_y.shape()), " does not match grad_x ", shape_str(grad_x.shape()), " in N and C");
}
}  // namespace

Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices) {
  pool2d_output_shape(x.shape(), p);
  return TETHER_ON_DEVICE(x.device(), max_pool2d_forward, x, p, indices);
}
void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x, bool accumulate) {
  check_pool_backward(grad_y, grad_x, "max_pool2d_backward");
  TETHER_CHECK(indices.dtype() == DType::i64 && indices.shape() == grad_y.shape(),
               "max_pool2d_backward: indices must be i64 of grad_y's shape ", shape_str(grad_y.shape()), ", got ",
               indices.str());
  TETHER_ON_DEVICE(grad_y.device(), max_pool2d_backward, grad_y, indices, grad_x, accumulate);
}
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  pool2d_output_shape(x.shape(), p);
  TETHER_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, "avg_pool2d: dilation is not supported (got ",
               p.dilation[0], "x", p.dilation[1], ")");
  return TETHER_ON_DEVICE(x.device(), avg_pool2d_forward, x, p);
}
void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x, bool accumulate) {
  check_pool_backward(grad_y, grad_x, "avg_pool2d_backward");
  TETHER_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, "avg_pool2d_backward: dilation is not supported");
  const Shape expected = pool2d_output_shape(grad_x.shape(), p);
  TETHER_CHECK(grad_y.shape() == expected, "avg_pool2d_backward: grad_y ", shape_str(grad_y.shape()),
               " but pooling ", shape_str(grad_x.shape()), " gives ", shape_str(expected));
  TETHER_ON_DEVICE(grad_y.device(), avg_pool2d_backward, grad_y, p, grad_x, accumulate);
}
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) {
  TETHER_CHECK(x.dim() == 4 && out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: input ",
               shape_str(x.shape()), " to ", out_h, "x", out_w);
  TETHER_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: empty input plane in ", shape_str(x.shape()));
  return TETHER_ON_DEVICE(x.device(), adaptive_avg_pool2d_forward, x, out_h, out_w);
}
void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate) {
  check_pool_backward(grad_y, grad_x, "adaptive_avg_pool2d_backward");
  TETHER_ON_DEVICE(grad_y.device(), adaptive_avg_pool2d_backward, grad_y, grad_x, accumulate);
}

// ---- batch norm ------------------------------------------------------------------------------
namespace {
void check_bn_input(const Tensor& x, const char* op) {
  TETHER_CHECK(x.dim() == 2 || x.dim() == 4, op, ": input must be [N, C] or [N, C, H, W], got ", shape_str(x.shape()));
}
// A per-channel tensor (weight, statistics, their gradients): undefined, or float [C].
void check_bn_channel(const Tensor& t, int64_t c, const char* op, const char* what) {
  if (!t.defined()) return;
  TETHER_CHECK(t.dim() == 1 && t.size(0) == c, op, ": ", what, " must be [", c, "], got ", shape_str(t.shape()));
  TETHER_CHECK(is_floating(t.dtype()), op, ": ", what, " must be f32 or f64, got ", dtype_name(t.dtype()));
}
}  // namespace

Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, Tensor* save_mean, Tensor* save_invstd) {
  check_bn_input(x, "batch_norm");
  const int64_t c = x.size(1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    if (t->defined())
      TETHER_CHECK(t->dim() == 1 && t->size(0) == c, "batch_norm: per-channel tensor ", shape_str(t->shape()),
                   " for ", c, " channels");
  TETHER_CHECK(training || (running_mean.defined() && running_var.defined()),
               "batch_norm: eval mode needs running statistics");
  if (training) {
    const int64_t per_channel = x.numel() / std::max<int64_t>(c, 1);
    TETHER_CHECK(per_channel > 1, "batch_norm: expected more than 1 value per channel in training, got input ",
                 shape_str(x.shape()));
  }
  for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"},
                                 std::pair{&running_mean, "running_mean"}, std::pair{&running_var, "running_var"}})
    check_bn_channel(*t, c, "batch_norm", what);
  TETHER_CHECK(eps >= 0, "batch_norm: eps must be >= 0, got ", eps);
  return TETHER_ON_DEVICE(x.device(), batch_norm_forward, x, weight, bias, running_mean, running_var,
                          training, momentum, eps, save_mean, save_invstd);
}
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         bool accumulate) {
  check_bn_input(x, "batch_norm_backward");
  const int64_t c = x.size(1);
  TETHER_CHECK(grad_y.shape() == x.shape() && grad_y.dtype() == x.dtype(), "batch_norm_backward: grad_y ",
               grad_y.str(), " for input ", x.str());
  TETHER_CHECK(save_mean.defined() && save_invstd.defined(),
               "batch_norm_backward: save_mean and save_invstd from the forward are required");
  for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&save_mean, "save_mean"},
                                 std::pair{&save_invstd, "save_invstd"}, std::pair{&grad_weight, "grad_weight"},
                                 std::pair{&grad_bias, "grad_bias"}})
    check_bn_channel(*t, c, "batch_norm_backward", what);
  if (grad_x.defined())
    TETHER_CHECK(grad_x.shape() == x.shape() && grad_x.dtype() == x.dtype(), "batch_norm_backward: grad_x ",
                 grad_x.str(), " for input ", x.str());
  TETHER_ON_DEVICE(x.device(), batch_norm_backward, grad_y, x, weight, save_mean, save_invstd, training,
                   grad_x, grad_weight, grad_bias, accumulate);
}

// ---- softmax and losses -----------------------------------------------------------------------
namespace {
void check_softmax_backward(const char* op, const Tensor& grad_y, const Tensor& y, const Tensor& grad_x) {
  TETHER_CHECK(grad_y.shape() == y.shape() && grad_x.shape() == y.shape(), op, ": grad_y ", grad_y.str(),
               ", y ", y.str(), " and grad_x ", grad_x.str(), " must have the same shape");
  TETHER_CHECK(grad_y.dtype() == y.dtype() && grad_x.dtype() == y.dtype(), op, ": dtypes differ: grad_y ",
               grad_y.str(), ", y ", y.str(), ", grad_x ", grad_x.str());
}
}  // namespace

Tensor softmax(const Tensor& x, int dim) { return TETHER_ON_DEVICE(x.device(), softmax, x, dim); }
Tensor log_softmax(const Tensor& x, int dim) { return TETHER_ON_DEVICE(x.device(), log_softmax, x, dim); }
void softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x, bool accumulate) {
  check_softmax_backward("softmax_backward", grad_y, y, grad_x);
  TETHER_ON_DEVICE(y.device(), softmax_backward, grad_y, y, dim, grad_x, accumulate);
}
void log_softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x, bool accumulate) {
  check_softmax_backward("log_softmax_backward", grad_y, y, grad_x);
  TETHER_ON_DEVICE(y.device(), log_softmax_backward, grad_y, y, dim, grad_x, accumulate);
}
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs) {
  TETHER_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, K], got ", shape_str(logits.shape()));
  TETHER_CHECK(target.dtype() == DType::i64 && target.dim() == 1 && target.size(0) == logits.size(0),
               "cross_entropy: target must be i64 [", logits.size(0), "], got ", target.str());
  TETHER_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing ",
               label_smoothing, " outside [0, 1]");
  check_same_device(logits, target, "cross_entropy");
  const int64_t k = logits.size(1);
  TETHER_CHECK(k > 0, "cross_entropy: logits ", logits.str(), " have no classes");
  return TETHER_ON_DEVICE(logits.device(), cross_entropy_forward, logits, target, label_smoothing, reduction,
                          log_probs);
}
void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate) {
  TETHER_CHECK(log_probs.dim() == 2, "cross_entropy_backward: log_probs must be [N, K], got ", log_probs.str());
  const int64_t n = log_probs.size(0);
  TETHER_CHECK(target.dtype() == DType::i64 && target.dim() == 1 && target.size(0) == n,
               "cross_entropy_backward: target must be i64 [", n, "], got ", target.str());
  TETHER_CHECK(grad_logits.shape() == log_probs.shape() && grad_logits.dtype() == log_probs.dtype(),
               "cross_entropy_backward: grad_logits ", grad_logits.str(), " for log_probs ", log_probs.str());
  TETHER_CHECK(grad_loss.dtype() == log_probs.dtype(), "cross_entropy_backward: grad_loss ", grad_loss.str(),
               " and log_probs ", log_probs.str(), " have different dtypes");
  if (reduction == Reduction::none)
    TETHER_CHECK(grad_loss.dim() == 1 && grad_loss.size(0) == n, "cross_entropy_backward: reduction none needs grad_loss [",
                 n, "], got ", grad_loss.str());
  else
    TETHER_CHECK(grad_loss.numel() == 1, "cross_entropy_backward: a reduced loss needs a scalar grad_loss, got ",
                 grad_loss.str());
  TETHER_ON_DEVICE(log_probs.device(), cross_entropy_backward, grad_loss, log_probs, target, label_smoothing,
                   reduction, grad_logits, accumulate);
}

// ---- random -----------------------------------------------------------------------------------
void uniform_(const Tensor& t, double lo, double hi, Generator& gen) {
  TETHER_ON_DEVICE(t.device(), uniform_, t, lo, hi, gen);
}
void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  TETHER_CHECK(std >= 0, "normal_: std must be >= 0, got ", std);
  TETHER_ON_DEVICE(t.device(), normal_, t, mean, std, gen);
}
void bernoulli_(const Tensor& t, double p, Generator& gen) {
  TETHER_CHECK(p >= 0 && p <= 1, "bernoulli_: p ", p, " outside [0, 1]");
  TETHER_ON_DEVICE(t.device(), bernoulli_, t, p, gen);
}
Tensor dropout_mask(const Shape& shape, double p, DType dtype, Device device, Generator& gen) {
  TETHER_CHECK(p >= 0 && p < 1, "dropout: p ", p, " outside [0, 1)");
  return TETHER_ON_DEVICE(device, dropout_mask, shape, p, dtype, device, gen);
}

}  // namespace tether::ops
