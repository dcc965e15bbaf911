// Softmax, log-softmax and the fused cross-entropy on the CPU, with their backward kernels.
//
// Softmax over `dim` sees the input as [outer, len, inner] (contiguous). When inner == 1 each
// softmax is one contiguous row; otherwise a block of up to kColumns neighbouring columns of
// one outer slab is processed together, so the innermost loop runs over contiguous memory.
// Work items (rows or column blocks) are spread over OpenMP threads. Sums accumulate in
// double; every softmax subtracts its maximum first, so huge logits do not overflow.

// GCC 12 reports false -Wmaybe-uninitialized warnings inside its own AVX-512 intrinsics
// (the _mm512_undefined_* placeholders, GCC bug 105593) when Eigen's vectorised exp is
// inlined here. The pragma must precede the includes: the warnings point into those headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/shapes.h"

namespace tether::cpu {

namespace {

using acc_t = double;
constexpr int64_t kColumns = 64;  // columns per work item when softmax runs over a non-last dim

// Calls item(o, c0, width) for every row (inner == 1: c0 = 0, width = 1) or column block of
// every outer slab, in parallel when there is enough work.
template <typename Fn>
void for_each_item(const DimLayout& l, Fn&& item) {
  const int64_t blocks = (l.inner + kColumns - 1) / kColumns;
  const int64_t items = l.outer * blocks;
  const bool parallel = items > 1 && l.outer * l.len * l.inner >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t o = it / blocks, c0 = (it % blocks) * kColumns;
    item(o, c0, std::min(kColumns, l.inner - c0));
  }
}

template <typename T>
using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <typename T>
Eigen::Map<const Vec<T>> cmap(const T* p, int64_t n) { return Eigen::Map<const Vec<T>>(p, n); }
template <typename T>
Eigen::Map<Vec<T>> mmap(T* p, int64_t n) { return Eigen::Map<Vec<T>>(p, n); }

// The kernels use Eigen's array expressions for their vectorised exp/log (std::exp does not
// vectorise without -ffast-math). An all -inf slice has max -inf, so x - max is NaN there,
// as in PyTorch. log_softmax is (x - max) - log(sum), exact for huge logits, rather than
// x - (max + log sum).

// Forward over one contiguous row (inner == 1).
template <typename T>
void softmax_row(const T* x, T* y, int64_t len, bool log) {
  auto xr = cmap(x, len);
  auto yr = mmap(y, len);
  const T m = xr.maxCoeff();
  yr = (xr - m).exp();
  const acc_t sum = yr.template cast<acc_t>().sum();
  if (log) yr = (xr - m) - static_cast<T>(std::log(sum));
  else yr *= static_cast<T>(1.0 / sum);
}

// Forward over `width` adjacent columns: x and y point at element (o, 0, c0), consecutive
// elements along `dim` are `inner` apart.
template <typename T>
void softmax_columns(const T* x, T* y, int64_t len, int64_t inner, int64_t width, bool log) {
  T m_buf[kColumns], t_buf[kColumns];
  acc_t sum_buf[kColumns];
  auto m = mmap(m_buf, width);
  auto sum = mmap(sum_buf, width);
  m = cmap(x, width);
  for (int64_t j = 1; j < len; ++j) m = m.max(cmap(x + j * inner, width));
  sum.setZero();
  for (int64_t j = 0; j < len; ++j) {
    if (log) {
      sum += (cmap(x + j * inner, width) - m).exp().template cast<acc_t>();
    } else {
      auto yj = mmap(y + j * inner, width);
      yj = (cmap(x + j * inner, width) - m).exp();
      sum += yj.template cast<acc_t>();
    }
  }
  auto t = mmap(t_buf, width);  // log(sum) or 1 / sum, in T
  if (log) {
    t = sum.log().template cast<T>();
    for (int64_t j = 0; j < len; ++j) mmap(y + j * inner, width) = (cmap(x + j * inner, width) - m) - t;
  } else {
    t = sum.inverse().template cast<T>();
    for (int64_t j = 0; j < len; ++j) mmap(y + j * inner, width) *= t;
  }
}

Tensor softmax_forward(const Tensor& x, int dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  const DimLayout l = dim_layout(x, dim, op);
  return dispatch_float(x.dtype(), op, [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(x.shape(), x.dtype());
    if (y.numel() == 0) return y;
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    for_each_item(l, [&](int64_t o, int64_t c0, int64_t width) {
      const int64_t base = o * l.len * l.inner + c0;
      if (l.inner == 1) softmax_row(xp + base, yp + base, l.len, log);
      else softmax_columns(xp + base, yp + base, l.len, l.inner, width, log);
    });
    return y;
  });
}

// Runs `compute(out, accumulate)` on grad_x's memory when it is contiguous, else on a
// contiguous temporary that is then copied (or added) into grad_x.
template <typename T, typename Fn>
void write_grad(const Tensor& grad_x, bool accumulate, Fn&& compute) {
  if (grad_x.is_contiguous()) {
    compute(grad_x.data<T>(), accumulate);
    return;
  }
  Tensor tmp = Tensor::empty(grad_x.shape(), grad_x.dtype());
  compute(tmp.data<T>(), false);
  if (accumulate) ops::axpy_(grad_x, 1.0, tmp);
  else ops::copy_(grad_x, tmp);
}

// gx = y * (gy - sum(gy * y))       (softmax)
// gx = gy - exp(y) * sum(gy)        (log_softmax, y = log p)
// Writes gx, or adds to it when `accumulate`.
template <typename T, typename Expr>
void store(Eigen::Map<Vec<T>> gx, const Expr& v, bool accumulate) {
  if (accumulate) gx += v;
  else gx = v;
}

template <typename T>
void softmax_backward_row(const T* gy, const T* y, T* gx, int64_t len, bool log, bool accumulate) {
  auto g = cmap(gy, len), yr = cmap(y, len);
  if (log) {
    const T d = static_cast<T>(g.template cast<acc_t>().sum());
    store(mmap(gx, len), g - yr.exp() * d, accumulate);
  } else {
    const T d = static_cast<T>((g * yr).template cast<acc_t>().sum());
    store(mmap(gx, len), yr * (g - d), accumulate);
  }
}

template <typename T>
void softmax_backward_columns(const T* gy, const T* y, T* gx, int64_t len, int64_t inner, int64_t width,
                              bool log, bool accumulate) {
  acc_t dot_buf[kColumns];
  T d_buf[kColumns];
  auto dot = mmap(dot_buf, width);
  auto d = mmap(d_buf, width);
  dot.setZero();
  for (int64_t j = 0; j < len; ++j) {
    auto g = cmap(gy + j * inner, width);
    if (log) dot += g.template cast<acc_t>();
    else dot += (g * cmap(y + j * inner, width)).template cast<acc_t>();
  }
  d = dot.template cast<T>();
  for (int64_t j = 0; j < len; ++j) {
    auto g = cmap(gy + j * inner, width), yj = cmap(y + j * inner, width);
    if (log) store(mmap(gx + j * inner, width), g - yj.exp() * d, accumulate);
    else store(mmap(gx + j * inner, width), yj * (g - d), accumulate);
  }
}

void softmax_backward_impl(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                           bool accumulate, bool log) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  const DimLayout l = dim_layout(y, dim, op);  // the op front checks shapes and dtypes
  if (y.numel() == 0) return;
  dispatch_float(y.dtype(), op, [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y), yc = ops::contiguous(y);
    const scalar_t* gp = gy.data<scalar_t>();
    const scalar_t* yp = yc.data<scalar_t>();
    write_grad<scalar_t>(grad_x, accumulate, [&](scalar_t* out, bool acc) {
      for_each_item(l, [&](int64_t o, int64_t c0, int64_t width) {
        const int64_t base = o * l.len * l.inner + c0;
        if (l.inner == 1) softmax_backward_row(gp + base, yp + base, out + base, l.len, log, acc);
        else softmax_backward_columns(gp + base, yp + base, out + base, l.len, l.inner, width, log, acc);
      });
    });
  });
}

// Throws (before any parallel region) on a target outside [0, K).
void check_targets(const Tensor& target, int64_t k, const char* op) {
  const int64_t* t = target.data<int64_t>();
  for (int64_t i = 0; i < target.numel(); ++i)
    TETHER_CHECK(t[i] >= 0 && t[i] < k, op, ": target[", i, "] = ", t[i], " is out of range [0, ", k,
                 ") for ", k, " classes");
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

// Per row: one pass over the logits for the running (online) logsumexp and the logit sum,
// then loss_i = (1-s)(lse - x_y) + s (lse - mean_k x_k), which is the label-smoothed
// (1-s)(-log p_y) + (s/K) sum_k (-log p_k). A second pass writes log_probs when asked.
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs) {
  const int64_t n = logits.size(0), k = logits.size(1);
  Tensor tc = ops::contiguous(target);
  check_targets(tc, k, "cross_entropy");
  return dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor x = ops::contiguous(logits);
    const scalar_t* xp = x.data<scalar_t>();
    const int64_t* tp = tc.data<int64_t>();
    scalar_t* lp = nullptr;
    if (log_probs) {
      *log_probs = Tensor::empty({n, k}, logits.dtype());
      lp = log_probs->data<scalar_t>();
    }
    const acc_t s = label_smoothing;
    std::vector<acc_t> row_loss(static_cast<size_t>(n));
    constexpr acc_t neg_inf = -std::numeric_limits<acc_t>::infinity();
#pragma omp parallel for schedule(static) if (n * k >= kParallelGrain && n > 1)
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* row = xp + i * k;
      acc_t m = neg_inf, sum = 0, sum_x = 0;
      for (int64_t j = 0; j < k; ++j) {
        const acc_t v = row[j];
        if (v > m) {  // new maximum: rescale the running sum
          sum = sum * std::exp(m - v) + 1.0;
          m = v;
        } else if (m != neg_inf) {  // skips -inf - -inf (an all -inf prefix)
          sum += std::exp(v - m);
        }
        sum_x += v;
      }
      if (std::isnan(sum_x)) m = sum_x;  // NaN logits give a NaN loss (the branch above skips them)
      const acc_t lse = m + std::log(sum);
      acc_t loss = (1.0 - s) * (lse - static_cast<acc_t>(row[tp[i]]));
      // Only with smoothing: with s = 0 a -inf logit must not turn 0 * inf into NaN.
      if (s > 0) loss += s * (lse - sum_x / static_cast<acc_t>(k));
      row_loss[i] = loss;
      if (lp)
        for (int64_t j = 0; j < k; ++j) lp[i * k + j] = static_cast<scalar_t>(static_cast<acc_t>(row[j]) - lse);
    }
    if (reduction == Reduction::none) {
      Tensor out = Tensor::empty({n}, logits.dtype());
      scalar_t* o = out.data<scalar_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<scalar_t>(row_loss[i]);
      return out;
    }
    // Serial sum of the row losses: the same result for any thread count.
    acc_t total = 0;
    for (acc_t v : row_loss) total += v;
    if (reduction == Reduction::mean)
      total = n == 0 ? std::numeric_limits<acc_t>::quiet_NaN() : total / static_cast<acc_t>(n);
    return Tensor::scalar(total, logits.dtype());
  });
}

// grad_logits[i, k] = (p_ik - (1-s)[k == y_i] - s/K) * scale_i, with scale_i = g_i (none),
// g (sum) or g/N (mean).
void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate) {
  const int64_t n = log_probs.size(0), k = log_probs.size(1);  // checked by the op front
  Tensor tc = ops::contiguous(target);
  check_targets(tc, k, "cross_entropy_backward");
  if (n == 0) return;
  dispatch_float(log_probs.dtype(), "cross_entropy_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor lpc = ops::contiguous(log_probs), g = ops::contiguous(grad_loss);
    const scalar_t* lp = lpc.data<scalar_t>();
    const scalar_t* gp = g.data<scalar_t>();
    const int64_t* tp = tc.data<int64_t>();
    const acc_t s = label_smoothing, smooth = s / static_cast<acc_t>(k), hit = 1.0 - s;
    const acc_t reduced_scale = reduction == Reduction::mean ? static_cast<acc_t>(gp[0]) / static_cast<acc_t>(n)
                                                             : static_cast<acc_t>(gp[0]);
    write_grad<scalar_t>(grad_logits, accumulate, [&](scalar_t* out, bool acc) {
#pragma omp parallel for schedule(static) if (n * k >= kParallelGrain && n > 1)
      for (int64_t i = 0; i < n; ++i) {
        const acc_t scale = reduction == Reduction::none ? static_cast<acc_t>(gp[i]) : reduced_scale;
        const scalar_t* lrow = lp + i * k;
        scalar_t* orow = out + i * k;
        for (int64_t j = 0; j < k; ++j) {
          const acc_t p = std::exp(static_cast<acc_t>(lrow[j]));
          const scalar_t v = static_cast<scalar_t>((p - smooth - (j == tp[i] ? hit : 0.0)) * scale);
          orow[j] = acc ? orow[j] + v : v;
        }
      }
    });
  });
}

}  // namespace tether::cpu
