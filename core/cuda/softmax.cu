// Softmax, log-softmax and the fused cross-entropy on the GPU, with their backward kernels,
// mirroring core/cpu/softmax.cpp (roundings, NaN/inf rules, errors).
//
// Softmax over `dim` sees the input as [outer, len, inner] (contiguous). When inner == 1 each
// softmax is one contiguous row, reduced by one block (sized to the row); otherwise one thread
// per (outer, column) walks its column, and neighbouring threads read neighbouring columns.
// Sums accumulate in double in fixed trees; every softmax subtracts its maximum first.
//
// Cross-entropy targets are validated on the device: a kernel records the first bad index,
// the host reads that one word back (this waits for the stream) and raises the CPU's error.
#include <cstdint>

#include "core/cuda/kernels.h"
#include "core/cuda/nn_util.cuh"
#include "core/shapes.h"

namespace tether::cuda {

namespace {

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- softmax / log_softmax forward ------------------------------------------------------------
// y = exp(x - max) * (1 / sum), or (x - max) - log(sum); sum = sum of exp(x - max) in double.
// An all -inf slice has max -inf, so x - max is NaN there, as on the CPU.
template <typename T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t len, bool log) {
  __shared__ T shared_t[32];
  __shared__ double shared_d[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    T m = neg_inf<T>();
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) m = MaxOp{}(m, xr[j]);
    m = block_reduce(m, MaxOp{}, shared_t);
    double sum = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) sum += static_cast<double>(exp_of(xr[j] - m));
    sum = block_reduce(sum, SumOp{}, shared_d);
    if (log) {
      const T t = static_cast<T>(::log(sum));
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yr[j] = (xr[j] - m) - t;
    } else {
      const T t = static_cast<T>(1.0 / sum);
      for (int64_t j = threadIdx.x; j < len; j += blockDim.x) yr[j] = exp_of(xr[j] - m) * t;
    }
  }
}

template <typename T>
__global__ void softmax_columns_kernel(const T* x, T* y, DimLayout l, bool log) {
  const int64_t columns = l.outer * l.inner;
  for (int64_t col = global_thread(); col < columns; col += grid_threads()) {
    const int64_t base = (col / l.inner) * l.len * l.inner + col % l.inner;
    const T* xc = x + base;
    T* yc = y + base;
    T m = neg_inf<T>();
    for (int64_t j = 0; j < l.len; ++j) m = MaxOp{}(m, xc[j * l.inner]);
    double sum = 0;
    for (int64_t j = 0; j < l.len; ++j) sum += static_cast<double>(exp_of(xc[j * l.inner] - m));
    if (log) {
      const T t = static_cast<T>(::log(sum));
      for (int64_t j = 0; j < l.len; ++j) yc[j * l.inner] = (xc[j * l.inner] - m) - t;
    } else {
      const T t = static_cast<T>(1.0 / sum);
      for (int64_t j = 0; j < l.len; ++j) yc[j * l.inner] = exp_of(xc[j * l.inner] - m) * t;
    }
  }
}

Tensor softmax_forward(const Tensor& x, int dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  const DimLayout l = dim_layout(x, dim, op);
  return dispatch_float(x.dtype(), op, [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
    if (y.numel() == 0) return y;
    if (l.inner == 1) {
      softmax_rows_kernel<scalar_t><<<grid_for(l.outer), row_threads(l.len), 0, stream_of(x)>>>(
          xc.data<scalar_t>(), y.data<scalar_t>(), l.outer, l.len, log);
      TETHER_CHECK_LAUNCH("softmax_rows_kernel");
    } else {
      softmax_columns_kernel<scalar_t><<<blocks_for(l.outer * l.inner), kThreads, 0, stream_of(x)>>>(
          xc.data<scalar_t>(), y.data<scalar_t>(), l, log);
      TETHER_CHECK_LAUNCH("softmax_columns_kernel");
    }
    return y;
  });
}

// ---- backward -------------------------------------------------------------------------------
// gx = y * (gy - sum(gy * y))       (softmax)
// gx = gy - exp(y) * sum(gy)        (log_softmax, y = log p)
// The sum in double, rounded to T; gx written, or added to when `add`.
template <typename T>
__device__ __forceinline__ double backward_term(T g, T y, bool log) {
  return log ? static_cast<double>(g) : static_cast<double>(g * y);
}
template <typename T>
__device__ __forceinline__ void backward_store(T* gx, T g, T y, T d, bool log, bool add) {
  const T v = log ? g - exp_of(y) * d : y * (g - d);
  *gx = add ? *gx + v : v;
}

template <typename T>
__global__ void softmax_backward_rows_kernel(const T* gy, const T* y, T* gx, int64_t rows, int64_t len, bool log,
                                             bool add) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = r * len;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) dot += backward_term(gy[base + j], y[base + j], log);
    const T d = static_cast<T>(block_reduce(dot, SumOp{}, shared));
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
      backward_store(gx + base + j, gy[base + j], y[base + j], d, log, add);
  }
}

template <typename T>
__global__ void softmax_backward_columns_kernel(const T* gy, const T* y, T* gx, DimLayout l, bool log, bool add) {
  const int64_t columns = l.outer * l.inner;
  for (int64_t col = global_thread(); col < columns; col += grid_threads()) {
    const int64_t base = (col / l.inner) * l.len * l.inner + col % l.inner;
    double dot = 0;
    for (int64_t j = 0; j < l.len; ++j) dot += backward_term(gy[base + j * l.inner], y[base + j * l.inner], log);
    const T d = static_cast<T>(dot);
    for (int64_t j = 0; j < l.len; ++j) {
      const int64_t at = base + j * l.inner;
      backward_store(gx + at, gy[at], y[at], d, log, add);
    }
  }
}

// Checks the devices of a softmax backward and returns the layout of `dim` (the op front
// checks shapes and dtypes).
DimLayout check_backward(const char* op, const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x) {
  TETHER_CHECK(grad_y.device() == y.device() && grad_x.device() == y.device(), op, ": grad_y ", grad_y.str(),
               ", y ", y.str(), " and grad_x ", grad_x.str(), " must be on one device");
  return dim_layout(y, dim, op);
}

void softmax_backward_impl(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x, bool accumulate,
                           bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  const DimLayout l = check_backward(op, grad_y, y, dim, grad_x);
  if (y.numel() == 0) return;
  dispatch_float(y.dtype(), op, [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y), yc = ops::contiguous(y);
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      if (l.inner == 1) {
        softmax_backward_rows_kernel<scalar_t><<<grid_for(l.outer), row_threads(l.len), 0, stream_of(y)>>>(
            gy.data<scalar_t>(), yc.data<scalar_t>(), gx.data<scalar_t>(), l.outer, l.len, log, add);
        TETHER_CHECK_LAUNCH("softmax_backward_rows_kernel");
      } else {
        softmax_backward_columns_kernel<scalar_t><<<blocks_for(l.outer * l.inner), kThreads, 0, stream_of(y)>>>(
            gy.data<scalar_t>(), yc.data<scalar_t>(), gx.data<scalar_t>(), l, log, add);
        TETHER_CHECK_LAUNCH("softmax_backward_columns_kernel");
      }
    });
  });
}

// ---- cross-entropy --------------------------------------------------------------------------
__global__ void find_bad_target_kernel(const int64_t* target, int64_t n, int64_t k, unsigned long long* first) {
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    if (target[i] < 0 || target[i] >= k) atomicMin(first, static_cast<unsigned long long>(i));
}

// Throws the CPU's error for the first target outside [0, K) (target contiguous, on the GPU).
void check_targets(const Tensor& target, int64_t k, const char* op) {
  const int64_t n = target.numel();
  if (n == 0) return;
  const int dev = device_of(target);
  const DeviceWord first(dev, 0xff);  // all ones: none found
  find_bad_target_kernel<<<blocks_for(n), kThreads, 0, stream(dev)>>>(target.data<int64_t>(), n, k, first.get());
  TETHER_CHECK_LAUNCH("find_bad_target_kernel");
  const unsigned long long i = first.read();
  if (i == ~0ull) return;
  int64_t value = 0;
  cuda::copy(&value, Device::cpu(), target.data<int64_t>() + i, target.device(), sizeof value);
  TETHER_FAIL(op, ": target[", i, "] = ", value, " is out of range [0, ", k, ") for ", k, " classes");
}

// One block per row: lse by max and a sum of exp(x - max) in double, then
// loss = (1-s)(lse - x_y) + s (lse - mean_k x_k). The CPU's online logsumexp is reproduced
// at the edges: NaN anywhere (or +inf with -inf) gives NaN, an all -inf row gives -inf, and
// +inf gives +inf once and NaN when repeated (each further +inf adds exp(inf - inf)).
// Writes loss_out[r] in T (reduction none) or row_loss[r] in double, and log_probs if wanted.
template <typename T>
__global__ void cross_entropy_rows_kernel(const T* x, const int64_t* target, int64_t n, int64_t k, double s,
                                          T* log_probs, T* loss_out, double* row_loss) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const T* row = x + r * k;
    double m = neg_inf<double>(), sum_x = 0;
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const double v = static_cast<double>(row[j]);
      m = MaxOp{}(m, v);
      sum_x += v;
    }
    m = block_reduce(m, MaxOp{}, shared);
    sum_x = block_reduce(sum_x, SumOp{}, shared);
    double sum = 0;
    if (m != neg_inf<double>())
      for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
        const double v = static_cast<double>(row[j]);
        sum += m == -neg_inf<double>() ? (v == m ? 1.0 : 0.0) : exp(v - m);
      }
    sum = block_reduce(sum, SumOp{}, shared);
    double lse;
    if (sum_x != sum_x) lse = sum_x;
    else if (m == -neg_inf<double>()) lse = sum == 1.0 ? m : static_cast<double>(NAN);
    else lse = m + ::log(sum);
    if (threadIdx.x == 0) {
      double loss = (1.0 - s) * (lse - static_cast<double>(row[target[r]]));
      // Only with smoothing: with s = 0 a -inf logit must not turn 0 * inf into NaN.
      if (s > 0) loss += s * (lse - sum_x / static_cast<double>(k));
      if (loss_out) loss_out[r] = static_cast<T>(loss);
      else row_loss[r] = loss;
    }
    if (log_probs)
      for (int64_t j = threadIdx.x; j < k; j += blockDim.x)
        log_probs[r * k + j] = static_cast<T>(static_cast<double>(row[j]) - lse);
  }
}

// One block: the sum (or mean; NaN for no rows) of the row losses, in a fixed order.
template <typename T>
__global__ void sum_losses_kernel(const double* row_loss, int64_t n, bool mean, T* out) {
  __shared__ double shared[32];
  double total = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) total += row_loss[i];
  total = block_reduce(total, SumOp{}, shared);
  if (threadIdx.x == 0) {
    if (mean) total = n == 0 ? static_cast<double>(NAN) : total / static_cast<double>(n);
    *out = static_cast<T>(total);
  }
}

// grad_logits[i, j] = (p_ij - s/K - (1-s)[j == y_i]) * scale_i, scale_i = g_i (none), g (sum)
// or g/N (mean). Rows over grid y, columns over grid x.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* log_probs, const int64_t* target, const T* g, int64_t n,
                                              int64_t k, double smooth, double hit, Reduction reduction, T* out,
                                              bool add) {
  for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const double g0 = static_cast<double>(g[0]);
    const double scale = reduction == Reduction::none ? static_cast<double>(g[i])
                         : reduction == Reduction::mean ? g0 / static_cast<double>(n)
                                                        : g0;
    const int64_t t = target[i];
    for (int64_t j = global_thread(); j < k; j += grid_threads()) {
      const double p = exp(static_cast<double>(log_probs[i * k + j]));
      const T v = static_cast<T>((p - smooth - (j == t ? hit : 0.0)) * scale);
      out[i * k + j] = add ? out[i * k + j] + v : v;
    }
  }
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_forward(x, dim, false); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_forward(x, dim, true); }

void softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x, bool accumulate) {
  softmax_backward_impl(grad_y, y, dim, grad_x, accumulate, false);
}
void log_softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x, bool accumulate) {
  softmax_backward_impl(grad_y, y, dim, grad_x, accumulate, true);
}

Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs) {
  const int64_t n = logits.size(0), k = logits.size(1);
  Tensor tc = ops::contiguous(target);
  check_targets(tc, k, "cross_entropy");
  return dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Device dev = logits.device();
    const cudaStream_t st = stream_of(logits);
    Tensor x = ops::contiguous(logits);
    Tensor lp = log_probs ? Tensor::empty({n, k}, logits.dtype(), dev) : Tensor();
    const bool none = reduction == Reduction::none;
    Tensor out = none ? Tensor::empty({n}, logits.dtype(), dev) : Tensor::empty({}, logits.dtype(), dev);
    Tensor row_loss = none ? Tensor() : Tensor::empty({n}, DType::f64, dev);
    if (n > 0) {
      cross_entropy_rows_kernel<scalar_t><<<grid_for(n), row_threads(k), 0, st>>>(
          x.data<scalar_t>(), tc.data<int64_t>(), n, k, label_smoothing, log_probs ? lp.data<scalar_t>() : nullptr,
          none ? out.data<scalar_t>() : nullptr, none ? nullptr : row_loss.data<double>());
      TETHER_CHECK_LAUNCH("cross_entropy_rows_kernel");
    }
    if (!none) {
      sum_losses_kernel<scalar_t><<<1, kThreads, 0, st>>>(row_loss.data<double>(), n, reduction == Reduction::mean,
                                                         out.data<scalar_t>());
      TETHER_CHECK_LAUNCH("sum_losses_kernel");
    }
    if (log_probs) *log_probs = lp;
    return out;
  });
}

void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate) {
  const int64_t n = log_probs.size(0), k = log_probs.size(1);  // checked by the op front
  TETHER_CHECK(grad_loss.device() == log_probs.device() && target.device() == log_probs.device() &&
                   grad_logits.device() == log_probs.device(),
               "cross_entropy_backward: grad_loss ", grad_loss.str(), ", log_probs ", log_probs.str(), ", target ",
               target.str(), " and grad_logits ", grad_logits.str(), " must be on one device");
  Tensor tc = ops::contiguous(target);
  check_targets(tc, k, "cross_entropy_backward");
  if (n == 0) return;
  dispatch_float(log_probs.dtype(), "cross_entropy_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor lpc = ops::contiguous(log_probs), g = ops::contiguous(grad_loss);
    const double s = label_smoothing, smooth = s / static_cast<double>(k), hit = 1.0 - s;
    write_into(grad_logits, accumulate, [&](const Tensor& out, bool add) {
      const dim3 grid(blocks_for(k), static_cast<unsigned>(n < 65535 ? n : 65535));
      cross_entropy_backward_kernel<scalar_t><<<grid, kThreads, 0, stream_of(out)>>>(
          lpc.data<scalar_t>(), tc.data<int64_t>(), g.data<scalar_t>(), n, k, smooth, hit, reduction,
          out.data<scalar_t>(), add);
      TETHER_CHECK_LAUNCH("cross_entropy_backward_kernel");
    });
  });
}

}  // namespace tether::cuda
