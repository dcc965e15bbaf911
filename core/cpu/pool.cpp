// Pooling kernels on NCHW tensors: max_pool2d (with argmax indices), avg_pool2d and
// adaptive_avg_pool2d, forward and backward. Every (n, c) plane is independent, so OpenMP
// splits the N*C planes across threads and each plane is a plain nested loop. Window
// bounds, divisors and tie/NaN rules follow PyTorch's CPU kernels exactly.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"

namespace tether::cpu {

namespace {

// Whole-plane work below this many elements (all planes together) stays on one thread.
bool worth_parallel(int64_t elements, int64_t planes) { return planes > 1 && elements >= kParallelGrain; }

struct Geometry {
  int64_t planes, h, w, oh, ow;
};

void check_nchw(const Tensor& t, const char* op, const char* what) {
  TETHER_CHECK(t.dim() == 4, op, ": ", what, " must be [N, C, H, W], got ", shape_str(t.shape()));
}

// Backward kernels write into the caller's tensor. When it is not contiguous they work in a
// contiguous temporary and copy (or add) it back, so the kernels only ever see dense planes.
template <typename Compute>
void write_into(const Tensor& out, bool accumulate, Compute&& compute) {
  if (out.is_contiguous()) {
    compute(out, accumulate);
    return;
  }
  Tensor tmp = Tensor::empty(out.shape(), out.dtype());
  compute(tmp, false);
  if (accumulate) axpy_(out, 1.0, tmp);
  else copy_(out, tmp);
}

// The output shape (ops::pool2d_output_shape) plus PyTorch's emptiness rule, which needs
// floor division: that shape function divides a negative numerator rounding toward zero, so
// with stride > 1 it would accept a window that does not fit (PyTorch: "output size is too
// small"). With ceil_mode the last window may overhang by up to stride - 1, as in PyTorch.
Shape pool_shape(const Shape& x, const Pool2dParams& p, const char* op) {
  const Shape out = ops::pool2d_output_shape(x, p);
  for (int i = 0; i < 2; ++i) {
    const int64_t span = p.dilation[i] * (p.kernel[i] - 1) + 1;
    const int64_t slack = p.ceil_mode ? p.stride[i] - 1 : 0;
    TETHER_CHECK(x[2 + i] + 2 * p.padding[i] + slack >= span, op, ": window of ", span, " (kernel ", p.kernel[i],
                 ", dilation ", p.dilation[i], ") larger than the padded input ", shape_str(x), " (padding ",
                 p.padding[i], ", ceil_mode ", p.ceil_mode, "): the output would be empty");
  }
  return out;
}

// Checks the pair (grad_y, grad_x) of a backward kernel: same dtype, same N and C.
void check_backward_pair(const Tensor& grad_y, const Tensor& grad_x, const char* op) {
  check_nchw(grad_y, op, "grad_y");
  check_nchw(grad_x, op, "grad_x");
  TETHER_CHECK(grad_y.dtype() == grad_x.dtype(), op, ": grad_y is ", dtype_name(grad_y.dtype()), " but grad_x is ",
               dtype_name(grad_x.dtype()));
  TETHER_CHECK(grad_y.size(0) == grad_x.size(0) && grad_y.size(1) == grad_x.size(1), op, ": grad_y ",
               shape_str(grad_y.shape()), " does not match grad_x ", shape_str(grad_x.shape()), " in N and C");
}

// PyTorch's average-pooling window for output position o along one axis: the clipped range
// [begin, end) inside the input, and the window length counted inside the padded input
// (the ceil_mode overhang past input + padding is not counted).
struct AvgWindow {
  int64_t begin, end, padded_len;
};
inline AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t stop = std::min(start + kernel, size + pad);
  return {std::max<int64_t>(start, 0), std::min(stop, size), stop - start};
}

// Adaptive bins: [floor(i*size/out), ceil((i+1)*size/out)).
inline int64_t bin_start(int64_t i, int64_t size, int64_t out) { return (i * size) / out; }
inline int64_t bin_end(int64_t i, int64_t size, int64_t out) { return ((i + 1) * size + out - 1) / out; }

}  // namespace

// ---- max pooling --------------------------------------------------------------------------
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices) {
  const Shape out_shape = pool_shape(x.shape(), p, "max_pool2d");
  return dispatch_float(x.dtype(), "max_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(out_shape, x.dtype());
    // Indices only when asked for (inference skips them: less memory traffic).
    Tensor idx = indices ? Tensor::empty(out_shape, DType::i64) : Tensor();
    const Geometry g{x.size(0) * x.size(1), x.size(2), x.size(3), out_shape[2], out_shape[3]};
    const auto [kh, kw] = p.kernel;
    const auto [sh, sw] = p.stride;
    const auto [ph, pw] = p.padding;
    const auto [dh, dw] = p.dilation;
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    int64_t* ip = indices ? idx.data<int64_t>() : nullptr;
#pragma omp parallel for schedule(static) if (worth_parallel(xc.numel(), g.planes))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const scalar_t* in = xp + plane * g.h * g.w;
      scalar_t* out = yp + plane * g.oh * g.ow;
      int64_t* out_idx = ip ? ip + plane * g.oh * g.ow : nullptr;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        // Padded positions hold -inf, so they never win: skip them (step by the dilation
        // until the window enters the input).
        int64_t h0 = oh * sh - ph;
        const int64_t h1 = std::min(h0 + (kh - 1) * dh + 1, g.h);
        while (h0 < 0) h0 += dh;
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          int64_t w0 = ow * sw - pw;
          const int64_t w1 = std::min(w0 + (kw - 1) * dw + 1, g.w);
          while (w0 < 0) w0 += dw;
          // A window can miss the input entirely (large dilation): -inf, index -1 (no input).
          int64_t best = h0 < h1 && w0 < w1 ? h0 * g.w + w0 : -1;
          scalar_t best_val = -std::numeric_limits<scalar_t>::infinity();
          for (int64_t ih = h0; ih < h1; ih += dh)
            for (int64_t iw = w0; iw < w1; iw += dw) {
              const scalar_t v = in[ih * g.w + iw];
              // Strict > keeps the first maximum on ties; NaN wins and propagates (PyTorch).
              if (v > best_val || std::isnan(v)) {
                best_val = v;
                best = ih * g.w + iw;
              }
            }
          out[oh * g.ow + ow] = best_val;
          if (out_idx) out_idx[oh * g.ow + ow] = best;
        }
      }
    }
    if (indices) *indices = idx;
    return y;
  });
}

void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x, bool accumulate) {
  check_backward_pair(grad_y, grad_x, "max_pool2d_backward");
  TETHER_CHECK(indices.dtype() == DType::i64 && indices.shape() == grad_y.shape(),
               "max_pool2d_backward: indices must be i64 of grad_y's shape ", shape_str(grad_y.shape()), ", got ",
               indices.str());
  dispatch_float(grad_y.dtype(), "max_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y), ic = ops::contiguous(indices);
    const Geometry g{grad_x.size(0) * grad_x.size(1), grad_x.size(2), grad_x.size(3), gy.size(2), gy.size(3)};
    const int64_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      scalar_t* gxp = gx.data<scalar_t>();
      const scalar_t* gyp = gy.data<scalar_t>();
      const int64_t* ip = ic.data<int64_t>();
      int64_t bad = 0;  // out-of-range indices (exceptions cannot leave an OpenMP region)
#pragma omp parallel for schedule(static) reduction(+ : bad) if (worth_parallel(gx.numel(), g.planes))
      for (int64_t plane = 0; plane < g.planes; ++plane) {
        scalar_t* dst = gxp + plane * plane_in;
        if (!add) std::fill(dst, dst + plane_in, scalar_t(0));
        const scalar_t* src = gyp + plane * plane_out;
        const int64_t* at = ip + plane * plane_out;
        for (int64_t o = 0; o < plane_out; ++o) {
          if (at[o] < 0 || at[o] >= plane_in) {
            bad += at[o] != -1;  // -1: the window saw no input, so no gradient
            continue;
          }
          dst[at[o]] += src[o];
        }
      }
      TETHER_CHECK(bad == 0, "max_pool2d_backward: ", bad, " indices outside the ", g.h, "x", g.w,
                   " input plane (indices from a different input shape?)");
    });
  });
}

// ---- average pooling ----------------------------------------------------------------------
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  TETHER_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, "avg_pool2d: dilation is not supported (got ",
               p.dilation[0], "x", p.dilation[1], ")");
  const Shape out_shape = pool_shape(x.shape(), p, "avg_pool2d");
  return dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(out_shape, x.dtype());
    const Geometry g{x.size(0) * x.size(1), x.size(2), x.size(3), out_shape[2], out_shape[3]};
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
#pragma omp parallel for schedule(static) if (worth_parallel(xc.numel(), g.planes))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const scalar_t* in = xp + plane * g.h * g.w;
      scalar_t* out = yp + plane * g.oh * g.ow;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const AvgWindow wh = avg_window(oh, p.stride[0], p.padding[0], p.kernel[0], g.h);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const AvgWindow ww = avg_window(ow, p.stride[1], p.padding[1], p.kernel[1], g.w);
          if (wh.begin >= wh.end || ww.begin >= ww.end) {  // window entirely in the padding
            out[oh * g.ow + ow] = 0;
            continue;
          }
          const int64_t divisor = p.count_include_pad ? wh.padded_len * ww.padded_len
                                                      : (wh.end - wh.begin) * (ww.end - ww.begin);
          double s = 0;
          for (int64_t ih = wh.begin; ih < wh.end; ++ih)
            for (int64_t iw = ww.begin; iw < ww.end; ++iw) s += in[ih * g.w + iw];
          out[oh * g.ow + ow] = static_cast<scalar_t>(s / static_cast<double>(divisor));
        }
      }
    }
    return y;
  });
}

void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x, bool accumulate) {
  check_backward_pair(grad_y, grad_x, "avg_pool2d_backward");
  TETHER_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, "avg_pool2d_backward: dilation is not supported");
  const Shape expected = pool_shape(grad_x.shape(), p, "avg_pool2d_backward");
  TETHER_CHECK(grad_y.shape() == expected, "avg_pool2d_backward: grad_y ", shape_str(grad_y.shape()),
               " but pooling ", shape_str(grad_x.shape()), " gives ", shape_str(expected));
  dispatch_float(grad_y.dtype(), "avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const Geometry g{grad_x.size(0) * grad_x.size(1), grad_x.size(2), grad_x.size(3), gy.size(2), gy.size(3)};
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      scalar_t* gxp = gx.data<scalar_t>();
      const scalar_t* gyp = gy.data<scalar_t>();
#pragma omp parallel for schedule(static) if (worth_parallel(gx.numel(), g.planes))
      for (int64_t plane = 0; plane < g.planes; ++plane) {
        scalar_t* dst = gxp + plane * g.h * g.w;
        const scalar_t* src = gyp + plane * g.oh * g.ow;
        if (!add) std::fill(dst, dst + g.h * g.w, scalar_t(0));
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const AvgWindow wh = avg_window(oh, p.stride[0], p.padding[0], p.kernel[0], g.h);
          for (int64_t ow = 0; ow < g.ow; ++ow) {
            const AvgWindow ww = avg_window(ow, p.stride[1], p.padding[1], p.kernel[1], g.w);
            if (wh.begin >= wh.end || ww.begin >= ww.end) continue;
            const int64_t divisor = p.count_include_pad ? wh.padded_len * ww.padded_len
                                                        : (wh.end - wh.begin) * (ww.end - ww.begin);
            const scalar_t share = src[oh * g.ow + ow] / static_cast<scalar_t>(divisor);
            for (int64_t ih = wh.begin; ih < wh.end; ++ih)
              for (int64_t iw = ww.begin; iw < ww.end; ++iw) dst[ih * g.w + iw] += share;
          }
        }
      }
    });
  });
}

// ---- adaptive average pooling ----------------------------------------------------------------
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_nchw(x, "adaptive_avg_pool2d", "input");
  TETHER_CHECK(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size ", out_h, "x", out_w, " must be positive");
  TETHER_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: empty input plane in ", shape_str(x.shape()));
  return dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype());
    const Geometry g{x.size(0) * x.size(1), x.size(2), x.size(3), out_h, out_w};
    const scalar_t* xp = xc.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    if (out_h == 1 && out_w == 1) {  // global average pooling: one contiguous mean per plane
      const int64_t hw = g.h * g.w;
#pragma omp parallel for schedule(static) if (worth_parallel(xc.numel(), g.planes))
      for (int64_t plane = 0; plane < g.planes; ++plane) {
        const scalar_t* in = xp + plane * hw;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < hw; ++i) s += in[i];
        yp[plane] = static_cast<scalar_t>(s / static_cast<double>(hw));
      }
      return y;
    }
#pragma omp parallel for schedule(static) if (worth_parallel(xc.numel(), g.planes))
    for (int64_t plane = 0; plane < g.planes; ++plane) {
      const scalar_t* in = xp + plane * g.h * g.w;
      scalar_t* out = yp + plane * g.oh * g.ow;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const int64_t h0 = bin_start(oh, g.h, g.oh), h1 = bin_end(oh, g.h, g.oh);
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const int64_t w0 = bin_start(ow, g.w, g.ow), w1 = bin_end(ow, g.w, g.ow);
          double s = 0;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += in[ih * g.w + iw];
          out[oh * g.ow + ow] = static_cast<scalar_t>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
        }
      }
    }
    return y;
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate) {
  check_backward_pair(grad_y, grad_x, "adaptive_avg_pool2d_backward");
  dispatch_float(grad_y.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const Geometry g{grad_x.size(0) * grad_x.size(1), grad_x.size(2), grad_x.size(3), gy.size(2), gy.size(3)};
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      scalar_t* gxp = gx.data<scalar_t>();
      const scalar_t* gyp = gy.data<scalar_t>();
      const int64_t hw = g.h * g.w;
      if (g.oh == 1 && g.ow == 1) {  // global: every input gets grad / (H*W)
        const scalar_t inv = static_cast<scalar_t>(1.0 / static_cast<double>(hw));
#pragma omp parallel for schedule(static) if (worth_parallel(gx.numel(), g.planes))
        for (int64_t plane = 0; plane < g.planes; ++plane) {
          scalar_t* dst = gxp + plane * hw;
          const scalar_t share = gyp[plane] * inv;
          if (add) {
            for (int64_t i = 0; i < hw; ++i) dst[i] += share;
          } else {
            for (int64_t i = 0; i < hw; ++i) dst[i] = share;
          }
        }
        return;
      }
#pragma omp parallel for schedule(static) if (worth_parallel(gx.numel(), g.planes))
      for (int64_t plane = 0; plane < g.planes; ++plane) {
        scalar_t* dst = gxp + plane * hw;
        const scalar_t* src = gyp + plane * g.oh * g.ow;
        if (!add) std::fill(dst, dst + hw, scalar_t(0));
        for (int64_t oh = 0; oh < g.oh; ++oh) {
          const int64_t h0 = bin_start(oh, g.h, g.oh), h1 = bin_end(oh, g.h, g.oh);
          for (int64_t ow = 0; ow < g.ow; ++ow) {
            const int64_t w0 = bin_start(ow, g.w, g.ow), w1 = bin_end(ow, g.w, g.ow);
            const scalar_t share = src[oh * g.ow + ow] / static_cast<scalar_t>((h1 - h0) * (w1 - w0));
            for (int64_t ih = h0; ih < h1; ++ih)
              for (int64_t iw = w0; iw < w1; ++iw) dst[ih * g.w + iw] += share;
          }
        }
      }
    });
  });
}

}  // namespace tether::cpu
