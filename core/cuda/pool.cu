// Pooling kernels on NCHW tensors on the GPU: max_pool2d (with argmax indices), avg_pool2d and
// adaptive_avg_pool2d, forward and backward, mirroring core/cpu/pool.cpp (window bounds,
// divisors, tie/NaN rules, errors).
//
// Forward: one thread per output element (global average pooling: one warp per plane).
// Backward of the average poolings is a gather: each input element sums the shares of the
// windows that cover it, in the CPU's (oh, ow) order, so it matches the CPU's scatter bit for
// bit without atomics. Max pooling's backward only has the indices, so one warp owns each
// plane and scatters its outputs in order, 32 at a time; lanes that hit the same input are
// added by the lowest of them in lane order: the CPU's order of additions again.
#include <cstdint>

#include "core/cuda/kernels.h"
#include "core/cuda/nn_util.cuh"
#include "core/nn_geometry.h"

namespace tether::cuda {

namespace {

// Pool2dParams without std::array, for kernels.
struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;
};

Window window_of(const Pool2dParams& p) {
  return {p.kernel[0],  p.kernel[1],  p.stride[0],   p.stride[1], p.padding[0],
          p.padding[1], p.dilation[0], p.dilation[1], p.count_include_pad};
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// The op front checks the rest of a backward's operands (shapes, dtypes).
void check_backward_devices(const Tensor& grad_y, const Tensor& grad_x, const char* op) {
  TETHER_CHECK(grad_y.device() == grad_x.device(), op, ": grad_y is on ", grad_y.device().str(), " but grad_x on ",
               grad_x.device().str());
}

// The outputs whose average window (avg_window, core/nn_geometry.h) can cover input i: start(o) <= i < start(o) + kernel.
__device__ __forceinline__ void avg_cover(int64_t i, int64_t stride, int64_t pad, int64_t kernel, int64_t out,
                                          int64_t& lo, int64_t& hi) {
  const int64_t num = i + pad - kernel + 1;
  lo = num <= 0 ? 0 : (num + stride - 1) / stride;
  hi = min64((i + pad) / stride, out - 1);
}

// The adaptive bins (bin_start/bin_end, core/nn_geometry.h) that contain input i.
__device__ __forceinline__ void bin_cover(int64_t i, int64_t size, int64_t out, int64_t& lo, int64_t& hi) {
  lo = (i * out) / size;
  hi = min64(((i + 1) * out + size - 1) / size - 1, out - 1);
}

// ---- max pooling --------------------------------------------------------------------------
template <typename T>
__global__ void max_pool_forward_kernel(const T* x, T* y, int64_t* indices, PoolGeometry g, Window k) {
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t o = global_thread(); o < total; o += grid_threads()) {
    const int64_t ow = o % g.ow, oh = (o / g.ow) % g.oh, plane = o / (g.ow * g.oh);
    const T* in = x + plane * g.h * g.w;
    // Padded positions hold -inf and never win: start at the first tap inside the input.
    int64_t h0 = oh * k.sh - k.ph;
    const int64_t h1 = min64(h0 + (k.kh - 1) * k.dh + 1, g.h);
    while (h0 < 0) h0 += k.dh;
    int64_t w0 = ow * k.sw - k.pw;
    const int64_t w1 = min64(w0 + (k.kw - 1) * k.dw + 1, g.w);
    while (w0 < 0) w0 += k.dw;
    // A window that misses the input: -inf, index -1.
    int64_t best = h0 < h1 && w0 < w1 ? h0 * g.w + w0 : -1;
    T best_val = neg_inf<T>();
    for (int64_t ih = h0; ih < h1; ih += k.dh)
      for (int64_t iw = w0; iw < w1; iw += k.dw) {
        const T v = in[ih * g.w + iw];
        if (v > best_val || v != v) {  // first maximum on ties; NaN wins and propagates
          best_val = v;
          best = ih * g.w + iw;
        }
      }
    y[o] = best_val;
    if (indices) indices[o] = best;
  }
}

// One warp per plane. `bad` counts indices outside the plane other than -1.
template <typename T>
__global__ void max_pool_backward_kernel(const T* gy, const int64_t* indices, T* gx, int64_t planes,
                                         int64_t plane_in, int64_t plane_out, bool add,
                                         unsigned long long* bad) {
  constexpr unsigned kAll = 0xffffffffu;
  const int lane = threadIdx.x & 31;
  const int64_t warps = blockDim.x >> 5;
  unsigned long long bad_here = 0;
  for (int64_t plane = blockIdx.x * warps + (threadIdx.x >> 5); plane < planes; plane += gridDim.x * warps) {
    T* dst = gx + plane * plane_in;
    if (!add)
      for (int64_t i = lane; i < plane_in; i += 32) dst[i] = T(0);
    __syncwarp();
    const T* src = gy + plane * plane_out;
    const int64_t* at = indices + plane * plane_out;
    for (int64_t base = 0; base < plane_out; base += 32) {
      const int64_t o = base + lane;
      const int64_t target = o < plane_out ? at[o] : -1;
      const T v = o < plane_out ? src[o] : T(0);
      const bool valid = target >= 0 && target < plane_in;
      bad_here += !valid && target != -1;  // -1: the window saw no input, so no gradient
      const unsigned peers = __match_any_sync(kAll, static_cast<long long>(valid ? target : -1));
      if (__all_sync(kAll, !valid || peers == (1u << lane))) {
        if (valid) dst[target] += v;
      } else {
        const bool leader = valid && (peers & ((1u << lane) - 1)) == 0;
        T acc = leader ? dst[target] : T(0);
        for (int j = 0; j < 32; ++j) {
          const T vj = __shfl_sync(kAll, v, j);
          if (leader && ((peers >> j) & 1u)) acc += vj;
        }
        if (leader) dst[target] = acc;
      }
      __syncwarp();  // the next 32 outputs may add to the same inputs from other lanes
    }
  }
  if (bad_here) atomicAdd(bad, bad_here);
}

// ---- average pooling ----------------------------------------------------------------------
template <typename T>
__global__ void avg_pool_forward_kernel(const T* x, T* y, PoolGeometry g, Window k) {
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t o = global_thread(); o < total; o += grid_threads()) {
    const int64_t ow = o % g.ow, oh = (o / g.ow) % g.oh, plane = o / (g.ow * g.oh);
    const AvgWindow wh = avg_window(oh, k.sh, k.ph, k.kh, g.h);
    const AvgWindow ww = avg_window(ow, k.sw, k.pw, k.kw, g.w);
    if (wh.begin >= wh.end || ww.begin >= ww.end) {  // window entirely in the padding
      y[o] = T(0);
      continue;
    }
    const int64_t divisor = k.count_include_pad ? wh.padded_len * ww.padded_len
                                                : (wh.end - wh.begin) * (ww.end - ww.begin);
    const T* in = x + plane * g.h * g.w;
    double s = 0;
    for (int64_t ih = wh.begin; ih < wh.end; ++ih)
      for (int64_t iw = ww.begin; iw < ww.end; ++iw) s += static_cast<double>(in[ih * g.w + iw]);
    y[o] = static_cast<T>(s / static_cast<double>(divisor));
  }
}

// One thread per input element, gathering the shares of the windows that cover it.
template <typename T>
__global__ void avg_pool_backward_kernel(const T* gy, T* gx, PoolGeometry g, Window k, bool add) {
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t iw = e % g.w, ih = (e / g.w) % g.h, plane = e / (g.w * g.h);
    const T* src = gy + plane * g.oh * g.ow;
    int64_t oh0, oh1, ow0, ow1;
    avg_cover(ih, k.sh, k.ph, k.kh, g.oh, oh0, oh1);
    avg_cover(iw, k.sw, k.pw, k.kw, g.ow, ow0, ow1);
    T acc = add ? gx[e] : T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const AvgWindow wh = avg_window(oh, k.sh, k.ph, k.kh, g.h);
      if (ih < wh.begin || ih >= wh.end) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgWindow ww = avg_window(ow, k.sw, k.pw, k.kw, g.w);
        if (iw < ww.begin || iw >= ww.end) continue;
        const int64_t divisor = k.count_include_pad ? wh.padded_len * ww.padded_len
                                                    : (wh.end - wh.begin) * (ww.end - ww.begin);
        acc += src[oh * g.ow + ow] / static_cast<T>(divisor);
      }
    }
    gx[e] = acc;
  }
}

// ---- adaptive average pooling ----------------------------------------------------------------
// Global average pooling: one warp per plane, double sums in a fixed tree.
template <typename T>
__global__ void global_avg_pool_kernel(const T* x, T* y, int64_t planes, int64_t hw) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = blockDim.x >> 5;
  for (int64_t plane = blockIdx.x * warps + (threadIdx.x >> 5); plane < planes; plane += gridDim.x * warps) {
    const T* in = x + plane * hw;
    double s = 0;
    for (int64_t i = lane; i < hw; i += 32) s += static_cast<double>(in[i]);
    s = warp_reduce(s, SumOp{});
    if (lane == 0) y[plane] = static_cast<T>(s / static_cast<double>(hw));
  }
}

template <typename T>
__global__ void adaptive_avg_pool_forward_kernel(const T* x, T* y, PoolGeometry g) {
  const int64_t total = g.planes * g.oh * g.ow;
  for (int64_t o = global_thread(); o < total; o += grid_threads()) {
    const int64_t ow = o % g.ow, oh = (o / g.ow) % g.oh, plane = o / (g.ow * g.oh);
    const int64_t h0 = bin_start(oh, g.h, g.oh), h1 = bin_end(oh, g.h, g.oh);
    const int64_t w0 = bin_start(ow, g.w, g.ow), w1 = bin_end(ow, g.w, g.ow);
    const T* in = x + plane * g.h * g.w;
    double s = 0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += static_cast<double>(in[ih * g.w + iw]);
    y[o] = static_cast<T>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
  }
}

// Global: every input gets grad / (H*W), computed as the CPU does (grad * (1 / (H*W))).
template <typename T>
__global__ void global_avg_pool_backward_kernel(const T* gy, T* gx, int64_t planes, int64_t hw, T inv, bool add) {
  const int64_t total = planes * hw;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const T share = gy[e / hw] * inv;
    gx[e] = add ? gx[e] + share : share;
  }
}

template <typename T>
__global__ void adaptive_avg_pool_backward_kernel(const T* gy, T* gx, PoolGeometry g, bool add) {
  const int64_t total = g.planes * g.h * g.w;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t iw = e % g.w, ih = (e / g.w) % g.h, plane = e / (g.w * g.h);
    const T* src = gy + plane * g.oh * g.ow;
    int64_t oh0, oh1, ow0, ow1;
    bin_cover(ih, g.h, g.oh, oh0, oh1);
    bin_cover(iw, g.w, g.ow, ow0, ow1);
    T acc = add ? gx[e] : T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const int64_t h0 = bin_start(oh, g.h, g.oh), h1 = bin_end(oh, g.h, g.oh);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t w0 = bin_start(ow, g.w, g.ow), w1 = bin_end(ow, g.w, g.ow);
        if (iw < w0 || iw >= w1) continue;
        acc += src[oh * g.ow + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
    gx[e] = acc;
  }
}

// Blocks of kThreads threads, one warp per plane.
unsigned warp_plane_blocks(int64_t planes) { return grid_for((planes + kThreads / 32 - 1) / (kThreads / 32)); }

}  // namespace

// ---- max pooling --------------------------------------------------------------------------
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices) {
  const Shape out_shape = ops::pool2d_output_shape(x.shape(), p);  // checked by the op front
  return dispatch_float(x.dtype(), "max_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
    // Indices only when asked for (inference skips them: less memory traffic).
    Tensor idx = indices ? Tensor::empty(out_shape, DType::i64, x.device()) : Tensor();
    const PoolGeometry g = pool_geometry(x.shape(), out_shape);
    max_pool_forward_kernel<scalar_t><<<blocks_for(y.numel()), kThreads, 0, stream_of(x)>>>(
        xc.data<scalar_t>(), y.data<scalar_t>(), indices ? idx.data<int64_t>() : nullptr, g, window_of(p));
    TETHER_CHECK_LAUNCH("max_pool_forward_kernel");
    if (indices) *indices = idx;
    return y;
  });
}

void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x, bool accumulate) {
  check_backward_devices(grad_y, grad_x, "max_pool2d_backward");
  TETHER_CHECK(indices.device() == grad_y.device(), "max_pool2d_backward: indices on ", indices.device().str(),
               " but grad_y on ", grad_y.device().str());
  dispatch_float(grad_y.dtype(), "max_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y), ic = ops::contiguous(indices);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      // Out-of-range indices are counted on the device and reported after the kernel, as
      // the CPU does (reading the count back waits for the stream).
      const DeviceWord bad(device_of(gx), 0);
      max_pool_backward_kernel<scalar_t><<<warp_plane_blocks(g.planes), kThreads, 0, stream_of(gx)>>>(
          gy.data<scalar_t>(), ic.data<int64_t>(), gx.data<scalar_t>(), g.planes, g.h * g.w, g.oh * g.ow, add,
          bad.get());
      TETHER_CHECK_LAUNCH("max_pool_backward_kernel");
      const unsigned long long count = bad.read();
      TETHER_CHECK(count == 0, "max_pool2d_backward: ", count, " indices outside the ", g.h, "x", g.w,
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
    Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
    const PoolGeometry g = pool_geometry(x.shape(), out_shape);
    avg_pool_forward_kernel<scalar_t><<<blocks_for(y.numel()), kThreads, 0, stream_of(x)>>>(
        xc.data<scalar_t>(), y.data<scalar_t>(), g, window_of(p));
    TETHER_CHECK_LAUNCH("avg_pool_forward_kernel");
    return y;
  });
}

void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x, bool accumulate) {
  check_backward_devices(grad_y, grad_x, "avg_pool2d_backward");
  dispatch_float(grad_y.dtype(), "avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      avg_pool_backward_kernel<scalar_t><<<blocks_for(gx.numel()), kThreads, 0, stream_of(gx)>>>(
          gy.data<scalar_t>(), gx.data<scalar_t>(), g, window_of(p), add);
      TETHER_CHECK_LAUNCH("avg_pool_backward_kernel");
    });
  });
}

// ---- adaptive average pooling ----------------------------------------------------------------
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w) {
  return dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
    const PoolGeometry g = pool_geometry(x.shape(), y.shape());
    if (out_h == 1 && out_w == 1) {
      global_avg_pool_kernel<scalar_t><<<warp_plane_blocks(g.planes), kThreads, 0, stream_of(x)>>>(
          xc.data<scalar_t>(), y.data<scalar_t>(), g.planes, g.h * g.w);
      TETHER_CHECK_LAUNCH("global_avg_pool_kernel");
      return y;
    }
    adaptive_avg_pool_forward_kernel<scalar_t><<<blocks_for(y.numel()), kThreads, 0, stream_of(x)>>>(
        xc.data<scalar_t>(), y.data<scalar_t>(), g);
    TETHER_CHECK_LAUNCH("adaptive_avg_pool_forward_kernel");
    return y;
  });
}

void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate) {
  check_backward_devices(grad_y, grad_x, "adaptive_avg_pool2d_backward");
  dispatch_float(grad_y.dtype(), "adaptive_avg_pool2d_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor gy = ops::contiguous(grad_y);
    const PoolGeometry g = pool_geometry(grad_x.shape(), gy.shape());
    write_into(grad_x, accumulate, [&](const Tensor& gx, bool add) {
      if (g.oh == 1 && g.ow == 1) {
        const int64_t hw = g.h * g.w;
        const scalar_t inv = static_cast<scalar_t>(1.0 / static_cast<double>(hw));
        global_avg_pool_backward_kernel<scalar_t><<<blocks_for(gx.numel()), kThreads, 0, stream_of(gx)>>>(
            gy.data<scalar_t>(), gx.data<scalar_t>(), g.planes, hw, inv, add);
        TETHER_CHECK_LAUNCH("global_avg_pool_backward_kernel");
        return;
      }
      adaptive_avg_pool_backward_kernel<scalar_t><<<blocks_for(gx.numel()), kThreads, 0, stream_of(gx)>>>(
          gy.data<scalar_t>(), gx.data<scalar_t>(), g, add);
      TETHER_CHECK_LAUNCH("adaptive_avg_pool_backward_kernel");
    });
  });
}

}  // namespace tether::cuda
