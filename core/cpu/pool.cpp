// Pooling kernels on NCHW tensors: max_pool2d (with argmax indices), avg_pool2d and
// adaptive_avg_pool2d, forward and backward. Every (n, c) plane is independent, so OpenMP
// splits the N*C planes across threads and each plane is a plain nested loop. Window
// bounds, divisors and tie/NaN rules follow PyTorch's CPU kernels exactly (the window and bin
// arithmetic is core/nn_geometry.h, shared with the CUDA kernels; the op front checks the
// arguments).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/nn_geometry.h"

namespace tether::cpu {

namespace {

// Whole-plane work below this many elements (all planes together) stays on one thread.
bool worth_parallel(int64_t elements, int64_t planes) { return planes > 1 && elements >= kParallelGrain; }

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

}  // namespace

// ---- max pooling --------------------------------------------------------------------------
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices) {
  const Shape out_shape = ops::pool2d_output_shape(x.shape(), p);  // checked by the op front
  return dispatch_float(x.dtype(), "max_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(out_shape, x.dtype());
    // Indices only when asked for (inference skips them: less memory traffic).
    Tensor idx = indices ? Tensor::empty(out_shape, DType::i64) : Tensor();
    const PoolGeometry g = pool_geometry(x.shape(), out_shape);
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
  dispatch_float(grad_y.dtype(), "max_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y), ic = ops::contiguous(indices);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
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
  const Shape out_shape = ops::pool2d_output_shape(x.shape(), p);  // checked by the op front
  return dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(out_shape, x.dtype());
    const PoolGeometry g = pool_geometry(x.shape(), out_shape);
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
  dispatch_float(grad_y.dtype(), "avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
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
  return dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype());
    const PoolGeometry g = pool_geometry(x.shape(), y.shape());
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
  dispatch_float(grad_y.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
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
