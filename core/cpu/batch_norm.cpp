// Batch normalisation over [N, C] or [N, C, H, W]: forward (training with batch statistics and
// running-stat updates, or eval with the running statistics) and backward.
//
// Work is split over channels: channel c's data is N contiguous runs of H*W elements, and
// one thread does all of a channel's passes while it is hot in cache. Sums accumulate in
// double. Training forward reads x twice (statistics, then y) and backward reads
// (grad_y, x) twice (two sums, then grad_x); eval backward without weight/bias gradients
// reads them once. Per-channel scalars live in small std::vectors allocated once per call.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/nn_geometry.h"

namespace tether::cpu {

namespace {

// A per-channel tensor (any float dtype, any stride) as doubles; `fallback` when undefined.
std::vector<double> read_channels(const Tensor& t, int64_t c, double fallback) {
  std::vector<double> v(c, fallback);
  if (!t.defined()) return v;
  dispatch_float(t.dtype(), "batch_norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < c; ++i) v[i] = static_cast<double>(p[i * t.stride(0)]);
  });
  return v;
}

// Writes (or adds) per-channel doubles into a [C] tensor of any float dtype and stride.
void write_channels(const Tensor& t, const std::vector<double>& v, bool accumulate) {
  dispatch_float(t.dtype(), "batch_norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* p = t.data<scalar_t>();
    for (size_t i = 0; i < v.size(); ++i) {
      scalar_t& dst = p[static_cast<int64_t>(i) * t.stride(0)];
      dst = static_cast<scalar_t>(accumulate ? static_cast<double>(dst) + v[i] : v[i]);
    }
  });
}

Tensor channels_tensor(const std::vector<double>& v, DType dtype) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, dtype);
  write_channels(t, v, false);
  return t;
}

}  // namespace

Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, bool training, double momentum, double eps, Tensor* save_mean,
                          Tensor* save_invstd) {
  const BnLayout L = bn_layout(x);  // the op front checks the arguments

  const int64_t M = L.count();
  const std::vector<double> w = read_channels(weight, L.c, 1.0), b = read_channels(bias, L.c, 0.0);
  std::vector<double> mean(L.c), var(L.c), invstd(L.c);  // var: biased batch variance (training)
  if (!training) {
    mean = read_channels(running_mean, L.c, 0.0);
    const std::vector<double> rv = read_channels(running_var, L.c, 1.0);
    for (int64_t c = 0; c < L.c; ++c) invstd[c] = 1.0 / std::sqrt(rv[c] + eps);
  }

  Tensor y = dispatch_float(x.dtype(), "batch_norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = out.data<scalar_t>();
    const int64_t row_stride = L.c * L.hw;  // from sample n to n+1
#pragma omp parallel for schedule(static) if (L.c > 1 && x.numel() >= kParallelGrain)
    for (int64_t c = 0; c < L.c; ++c) {
      const scalar_t* xc0 = xp + c * L.hw;
      if (training) {
        // Sums shifted by the channel's first value: mean and variance without the
        // cancellation of sum(x^2) - sum(x)^2/M when |mean| >> std, in one pass.
        const double shift = M > 0 ? static_cast<double>(xc0[0]) : 0.0;
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < L.n; ++n) {
          const scalar_t* row = xc0 + n * row_stride;
          // simd: lets the compiler split the sums into vector lanes (reassociation).
#pragma omp simd reduction(+ : s1, s2)
          for (int64_t i = 0; i < L.hw; ++i) {
            const double d = static_cast<double>(row[i]) - shift;
            s1 += d;
            s2 += d * d;
          }
        }
        const double m1 = s1 / static_cast<double>(M);
        mean[c] = shift + m1;
        var[c] = std::max(0.0, s2 / static_cast<double>(M) - m1 * m1);
        invstd[c] = 1.0 / std::sqrt(var[c] + eps);
      }
      // y = (x - mean) * (w * invstd) + b
      const scalar_t m = static_cast<scalar_t>(mean[c]);
      const scalar_t scale = static_cast<scalar_t>(w[c] * invstd[c]);
      const scalar_t shift_out = static_cast<scalar_t>(b[c]);
      for (int64_t n = 0; n < L.n; ++n) {
        const scalar_t* row = xc0 + n * row_stride;
        scalar_t* dst = yp + c * L.hw + n * row_stride;
        for (int64_t i = 0; i < L.hw; ++i) dst[i] = (row[i] - m) * scale + shift_out;
      }
    }
    return out;
  });

  if (training) {
    // PyTorch's rule: running = (1 - momentum) running + momentum stat, with the unbiased
    // variance for running_var (the biased one normalises the batch).
    if (running_mean.defined()) {
      std::vector<double> rm = read_channels(running_mean, L.c, 0.0);
      for (int64_t c = 0; c < L.c; ++c) rm[c] = (1.0 - momentum) * rm[c] + momentum * mean[c];
      write_channels(running_mean, rm, false);
    }
    if (running_var.defined()) {
      std::vector<double> rv = read_channels(running_var, L.c, 1.0);
      const double unbias = static_cast<double>(M) / static_cast<double>(M - 1);
      for (int64_t c = 0; c < L.c; ++c) rv[c] = (1.0 - momentum) * rv[c] + momentum * var[c] * unbias;
      write_channels(running_var, rv, false);
    }
  }
  if (save_mean) *save_mean = channels_tensor(mean, x.dtype());
  if (save_invstd) *save_invstd = channels_tensor(invstd, x.dtype());
  return y;
}

void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, bool training, const Tensor& grad_x, const Tensor& grad_weight,
                         const Tensor& grad_bias, bool accumulate) {
  const BnLayout L = bn_layout(x);  // the op front checks the arguments
  if (!grad_x.defined() && !grad_weight.defined() && !grad_bias.defined()) return;

  const int64_t M = L.count();
  const std::vector<double> w = read_channels(weight, L.c, 1.0);
  const std::vector<double> mean = read_channels(save_mean, L.c, 0.0);
  const std::vector<double> invstd = read_channels(save_invstd, L.c, 1.0);
  // Per channel: sum(dy) and sum(dy * (x - mean)); grad_bias and grad_weight / invstd.
  std::vector<double> sum_dy(L.c, 0.0), sum_dy_xmu(L.c, 0.0);
  const bool need_sums = grad_weight.defined() || grad_bias.defined() || (training && grad_x.defined());

  // grad_x is written in place when contiguous, else through a temporary.
  Tensor gx_target;
  bool gx_add = accumulate;
  if (grad_x.defined()) {
    gx_target = grad_x.is_contiguous() ? grad_x : Tensor::empty(x.shape(), x.dtype());
    if (!grad_x.is_contiguous()) gx_add = false;
  }

  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x), gy = ops::contiguous(grad_y);
    const scalar_t* xp = xc.data<scalar_t>();
    const scalar_t* gp = gy.data<scalar_t>();
    scalar_t* gxp = gx_target.defined() ? gx_target.data<scalar_t>() : nullptr;
    const int64_t row_stride = L.c * L.hw;
#pragma omp parallel for schedule(static) if (L.c > 1 && x.numel() >= kParallelGrain)
    for (int64_t c = 0; c < L.c; ++c) {
      const int64_t base = c * L.hw;
      const scalar_t m = static_cast<scalar_t>(mean[c]);
      if (need_sums) {
        double s_dy = 0, s_dyx = 0;
        for (int64_t n = 0; n < L.n; ++n) {
          const scalar_t* xr = xp + base + n * row_stride;
          const scalar_t* gr = gp + base + n * row_stride;
#pragma omp simd reduction(+ : s_dy, s_dyx)
          for (int64_t i = 0; i < L.hw; ++i) {
            s_dy += gr[i];
            s_dyx += static_cast<double>(gr[i]) * static_cast<double>(xr[i] - m);
          }
        }
        sum_dy[c] = s_dy;
        sum_dy_xmu[c] = s_dyx;
      }
      if (!gxp) continue;
      // training: gx = w invstd (dy - mean(dy) - x_hat mean(dy x_hat)), written as
      //   a (dy - mean(dy)) + k (x - mean) with a = w invstd, k = -a invstd^2 sum(dy (x-mean)) / M.
      // eval: the statistics are constants, so gx = a dy.
      const double a_d = w[c] * invstd[c];
      const scalar_t a = static_cast<scalar_t>(a_d);
      const scalar_t mdy = training ? static_cast<scalar_t>(sum_dy[c] / static_cast<double>(M)) : scalar_t(0);
      const scalar_t k = training ? static_cast<scalar_t>(-a_d * invstd[c] * invstd[c] * sum_dy_xmu[c] /
                                                          static_cast<double>(M))
                                  : scalar_t(0);
      for (int64_t n = 0; n < L.n; ++n) {
        const scalar_t* xr = xp + base + n * row_stride;
        const scalar_t* gr = gp + base + n * row_stride;
        scalar_t* dst = gxp + base + n * row_stride;
        if (training && gx_add) {
          for (int64_t i = 0; i < L.hw; ++i) dst[i] += a * (gr[i] - mdy) + k * (xr[i] - m);
        } else if (training) {
          for (int64_t i = 0; i < L.hw; ++i) dst[i] = a * (gr[i] - mdy) + k * (xr[i] - m);
        } else if (gx_add) {
          for (int64_t i = 0; i < L.hw; ++i) dst[i] += a * gr[i];
        } else {
          for (int64_t i = 0; i < L.hw; ++i) dst[i] = a * gr[i];
        }
      }
    }
  });

  if (grad_x.defined() && !grad_x.same(gx_target)) {
    if (accumulate) axpy_(grad_x, 1.0, gx_target);
    else copy_(grad_x, gx_target);
  }
  if (grad_weight.defined()) {
    std::vector<double> gw(L.c);
    for (int64_t c = 0; c < L.c; ++c) gw[c] = sum_dy_xmu[c] * invstd[c];  // sum(dy * x_hat)
    write_channels(grad_weight, gw, accumulate);
  }
  if (grad_bias.defined()) write_channels(grad_bias, sum_dy, accumulate);
}

}  // namespace tether::cpu
