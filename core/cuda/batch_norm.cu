// Batch normalisation over [N, C] or [N, C, H, W] on the GPU, mirroring core/cpu/batch_norm.cpp:
// forward (training with batch statistics and running-stat updates, or eval with the running
// statistics) and backward, f32 and f64, per-channel tensors of either float dtype and any
// stride (weight/bias/running stats possibly undefined).
//
// A channel's M = N*HW values are cut into chunks of a few thousand, one block per (chunk,
// channel), so even a few channels of a large batch keep the GPU busy. Per-channel sums are a
// two-stage reduction in double: each block reduces its chunk (fixed tree) into a partial, then
// one warp per channel adds the partials (fixed order) and computes the per-channel scalars.
// Deterministic, no atomics. Forward statistics use the CPU's sums shifted by the channel's
// first value (no cancellation when |mean| >> std).
//
// Passes over the data: training forward 2 (statistics, then y); training backward 2 (two
// sums, then grad_x); eval forward 1; eval backward 1 (grad_x = w invstd dy is written in the
// same pass that sums grad_weight/grad_bias, or alone when those are not needed).
#include <cstdint>

#include "core/cuda/kernels.h"
#include "core/cuda/nn_util.cuh"
#include "core/nn_geometry.h"

namespace tether::cuda {

namespace {

// The op front checks the per-channel tensors' shapes and dtypes; here: their device.
void check_channel_device(const Tensor& t, const Tensor& x, const char* op, const char* what) {
  if (!t.defined()) return;
  TETHER_CHECK(t.device() == x.device(), op, ": ", what, " is on ", t.device().str(), " but the input on ",
               x.device().str());
}

// A per-channel [C] tensor of either float dtype and any stride, read as doubles in kernels;
// `fallback` when undefined (null).
struct ChannelIn {
  const void* p = nullptr;
  int64_t stride = 0;
  bool f64 = false;
  __device__ double get(int64_t c, double fallback) const {
    if (!p) return fallback;
    return f64 ? static_cast<const double*>(p)[c * stride] : static_cast<double>(static_cast<const float*>(p)[c * stride]);
  }
};
// Written (or added to, in double as the CPU does) from doubles; null: not wanted.
struct ChannelOut {
  void* p = nullptr;
  int64_t stride = 0;
  bool f64 = false;
  __device__ void put(int64_t c, double v, bool accumulate) const {
    if (!p) return;
    if (f64) {
      double& dst = static_cast<double*>(p)[c * stride];
      dst = accumulate ? dst + v : v;
    } else {
      float& dst = static_cast<float*>(p)[c * stride];
      dst = static_cast<float>(accumulate ? static_cast<double>(dst) + v : v);
    }
  }
};

ChannelIn channel_in(const Tensor& t) {
  if (!t.defined()) return {};
  return {t.raw_data(), t.stride(0), t.dtype() == DType::f64};
}
ChannelOut channel_out(const Tensor& t) {
  if (!t.defined()) return {};
  return {t.raw_data(), t.stride(0), t.dtype() == DType::f64};
}

// Each channel's M values in `chunks` chunks of `chunk` (the last may be shorter or empty).
struct Split {
  int64_t chunks, chunk;
};
constexpr int64_t kChunkMin = 4096;   // values per block at least (16 per thread)
constexpr int64_t kMaxChunks = 1024;  // partials per channel at most
constexpr int64_t kMaxGridY = 65535;

Split split_of(int64_t m) {
  int64_t chunks = (m + kChunkMin - 1) / kChunkMin;
  chunks = chunks < 1 ? 1 : (chunks > kMaxChunks ? kMaxChunks : chunks);
  return {chunks, (m + chunks - 1) / chunks};
}
// Blocks (chunk, channel); channels past the grid's y limit are looped over.
dim3 channel_grid(const BnLayout& L, const Split& s) {
  const int64_t y = L.c < 1 ? 1 : (L.c > kMaxGridY ? kMaxGridY : L.c);
  return dim3(static_cast<unsigned>(s.chunks), static_cast<unsigned>(y));
}
// Blocks of kThreads threads for one warp per channel.
unsigned warp_channel_blocks(int64_t c) { return grid_for((c + kThreads / 32 - 1) / (kThreads / 32)); }

// Calls fn(offset) for the values [begin, end) of channel c, thread-strided; value m is
// sample m / hw, position m % hw, at n*C*hw + c*hw + i. The offset advances without
// divisions: consecutive threads read consecutive positions of a row.
template <typename Fn>
__device__ __forceinline__ void for_chunk(const BnLayout& L, int64_t c, int64_t begin, int64_t end, Fn&& fn) {
  int64_t m = begin + threadIdx.x;
  if (m >= end) return;
  int64_t n = m / L.hw, i = m - n * L.hw;
  const int64_t row = L.c * L.hw;
  const int64_t step_n = blockDim.x / L.hw, step_i = blockDim.x - step_n * L.hw;
  int64_t off = n * row + c * L.hw + i;
  for (; m < end; m += blockDim.x) {
    fn(off);
    i += step_i;
    off += step_n * row + step_i;
    if (i >= L.hw) {  // carried into the next sample
      i -= L.hw;
      off += row - L.hw;
    }
  }
}

// The end of the chunk of a channel's values that starts at `begin`.
__device__ __forceinline__ int64_t chunk_end(const BnLayout& L, const Split& s, int64_t begin) {
  return begin + s.chunk < L.count() ? begin + s.chunk : L.count();
}

// Block-reduces (a, b) and stores them as partial[c][chunk].
__device__ __forceinline__ void store_partial(double a, double b, double* partial, int64_t c, int64_t chunks,
                                              double* shared) {
  a = block_reduce(a, SumOp{}, shared);
  b = block_reduce(b, SumOp{}, shared);
  if (threadIdx.x == 0) {
    partial[(c * chunks + blockIdx.x) * 2] = a;
    partial[(c * chunks + blockIdx.x) * 2 + 1] = b;
  }
}

// Warp-sums channel c's partials; lane 0 gets (a, b).
__device__ __forceinline__ void sum_partials(const double* partial, int64_t c, int64_t chunks, double& a,
                                             double& b) {
  const int lane = threadIdx.x & 31;
  a = 0;
  b = 0;
  for (int64_t j = lane; j < chunks; j += 32) {
    a += partial[(c * chunks + j) * 2];
    b += partial[(c * chunks + j) * 2 + 1];
  }
  a = warp_reduce(a, SumOp{});
  b = warp_reduce(b, SumOp{});
}

#define TETHER_FOR_CHANNEL_BLOCKS(c) for (int64_t c = blockIdx.y; c < L.c; c += gridDim.y)
#define TETHER_FOR_CHANNEL_WARPS(c)                                                         \
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); c < L.c; \
       c += static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5))

// ---- forward ------------------------------------------------------------------------------
// Partials of sum(d) and sum(d^2), d = x - (the channel's first value).
template <typename T>
__global__ void bn_stats_kernel(const T* x, BnLayout L, Split s, double* partial) {
  __shared__ double shared[32];
  TETHER_FOR_CHANNEL_BLOCKS(c) {
    const double shift = static_cast<double>(x[c * L.hw]);
    const int64_t begin = blockIdx.x * s.chunk, end = chunk_end(L, s, begin);
    double s1 = 0, s2 = 0;
    for_chunk(L, c, begin, end, [&](int64_t off) {
      const double d = static_cast<double>(x[off]) - shift;
      s1 += d;
      s2 += d * d;
    });
    store_partial(s1, s2, partial, c, s.chunks, shared);
  }
}

// Per channel: the statistics (batch or running), the running-stat update, save_mean /
// save_invstd, and coef = [mean, w invstd, b] in T, as the CPU rounds them.
template <typename T>
__global__ void bn_forward_params_kernel(const T* x, const double* partial, BnLayout L, int64_t chunks,
                                         bool training, ChannelIn w, ChannelIn b, ChannelIn rm, ChannelIn rv,
                                         ChannelOut rm_out, ChannelOut rv_out, double momentum, double eps,
                                         T* save_mean, T* save_invstd, T* coef) {
  TETHER_FOR_CHANNEL_WARPS(c) {
    double mean, invstd;
    if (training) {
      double s1, s2;
      sum_partials(partial, c, chunks, s1, s2);
      if ((threadIdx.x & 31) != 0) continue;
      const double m = static_cast<double>(L.count());
      const double m1 = s1 / m;
      mean = static_cast<double>(x[c * L.hw]) + m1;
      const double v = s2 / m - m1 * m1;
      const double var = 0.0 < v ? v : 0.0;  // std::max(0.0, v), NaN included
      invstd = 1.0 / sqrt(var + eps);
      // PyTorch: running = (1 - momentum) running + momentum stat, unbiased variance.
      rm_out.put(c, (1.0 - momentum) * rm.get(c, 0.0) + momentum * mean, false);
      rv_out.put(c, (1.0 - momentum) * rv.get(c, 1.0) + momentum * var * (m / (m - 1.0)), false);
    } else {
      if ((threadIdx.x & 31) != 0) continue;
      mean = rm.get(c, 0.0);
      invstd = 1.0 / sqrt(rv.get(c, 1.0) + eps);
    }
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    coef[c] = static_cast<T>(mean);
    coef[L.c + c] = static_cast<T>(w.get(c, 1.0) * invstd);
    coef[2 * L.c + c] = static_cast<T>(b.get(c, 0.0));
  }
}

// y = (x - mean) * scale + shift
template <typename T>
__global__ void bn_normalize_kernel(const T* x, T* y, const T* coef, BnLayout L, Split s) {
  TETHER_FOR_CHANNEL_BLOCKS(c) {
    const T m = coef[c], scale = coef[L.c + c], shift = coef[2 * L.c + c];
    const int64_t begin = blockIdx.x * s.chunk, end = chunk_end(L, s, begin);
    for_chunk(L, c, begin, end, [&](int64_t off) { y[off] = (x[off] - m) * scale + shift; });
  }
}

// ---- backward -----------------------------------------------------------------------------
// Partials of sum(dy) and sum(dy * (x - mean)). kEvalGx: also writes grad_x = (w invstd) dy
// (eval mode, where it needs no sums) in the same pass.
template <typename T, bool kEvalGx>
__global__ void bn_backward_sums_kernel(const T* gy, const T* x, BnLayout L, Split s, ChannelIn mean, ChannelIn w,
                                        ChannelIn invstd, double* partial, T* gx, bool add) {
  __shared__ double shared[32];
  TETHER_FOR_CHANNEL_BLOCKS(c) {
    const T m = static_cast<T>(mean.get(c, 0.0));
    const T a = kEvalGx ? static_cast<T>(w.get(c, 1.0) * invstd.get(c, 1.0)) : T(0);
    const int64_t begin = blockIdx.x * s.chunk, end = chunk_end(L, s, begin);
    double s_dy = 0, s_dyx = 0;
    for_chunk(L, c, begin, end, [&](int64_t off) {
      const T dy = gy[off];
      s_dy += static_cast<double>(dy);
      s_dyx += static_cast<double>(dy) * static_cast<double>(x[off] - m);
      if (kEvalGx) gx[off] = add ? gx[off] + a * dy : a * dy;
    });
    store_partial(s_dy, s_dyx, partial, c, s.chunks, shared);
  }
}

// Per channel: grad_weight += sum(dy x_hat), grad_bias += sum(dy); in training, coef =
// [a, mean(dy), k, mean] of grad_x = a (dy - mean(dy)) + k (x - mean), a = w invstd,
// k = -a invstd^2 sum(dy (x - mean)) / M, rounded to T as the CPU does.
template <typename T>
__global__ void bn_backward_finalize_kernel(const double* partial, BnLayout L, int64_t chunks, ChannelIn w,
                                            ChannelIn mean, ChannelIn invstd, ChannelOut grad_w, ChannelOut grad_b,
                                            bool accumulate, T* coef) {
  TETHER_FOR_CHANNEL_WARPS(c) {
    double s_dy, s_dyx;
    sum_partials(partial, c, chunks, s_dy, s_dyx);
    if ((threadIdx.x & 31) != 0) continue;
    const double inv = invstd.get(c, 1.0);
    grad_w.put(c, s_dyx * inv, accumulate);
    grad_b.put(c, s_dy, accumulate);
    if (!coef) continue;
    const double m = static_cast<double>(L.count());
    const double a = w.get(c, 1.0) * inv;
    coef[c] = static_cast<T>(a);
    coef[L.c + c] = static_cast<T>(s_dy / m);
    coef[2 * L.c + c] = static_cast<T>(-a * inv * inv * s_dyx / m);
    coef[3 * L.c + c] = static_cast<T>(mean.get(c, 0.0));
  }
}

// Training: grad_x = a (dy - mean(dy)) + k (x - mean), from coef.
template <typename T>
__global__ void bn_grad_x_kernel(const T* gy, const T* x, const T* coef, BnLayout L, Split s, T* gx, bool add) {
  TETHER_FOR_CHANNEL_BLOCKS(c) {
    const T a = coef[c], mdy = coef[L.c + c], k = coef[2 * L.c + c], m = coef[3 * L.c + c];
    const int64_t begin = blockIdx.x * s.chunk, end = chunk_end(L, s, begin);
    for_chunk(L, c, begin, end, [&](int64_t off) {
      const T v = a * (gy[off] - mdy) + k * (x[off] - m);
      gx[off] = add ? gx[off] + v : v;
    });
  }
}

// Eval, no sums wanted: grad_x = (w invstd) dy.
template <typename T>
__global__ void bn_eval_grad_x_kernel(const T* gy, BnLayout L, Split s, ChannelIn w, ChannelIn invstd, T* gx,
                                      bool add) {
  TETHER_FOR_CHANNEL_BLOCKS(c) {
    const T a = static_cast<T>(w.get(c, 1.0) * invstd.get(c, 1.0));
    const int64_t begin = blockIdx.x * s.chunk, end = chunk_end(L, s, begin);
    for_chunk(L, c, begin, end, [&](int64_t off) { gx[off] = add ? gx[off] + a * gy[off] : a * gy[off]; });
  }
}

#undef TETHER_FOR_CHANNEL_BLOCKS
#undef TETHER_FOR_CHANNEL_WARPS

}  // namespace

Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, bool training, double momentum, double eps, Tensor* save_mean,
                          Tensor* save_invstd) {
  const BnLayout L = bn_layout(x);  // the op front checks the arguments
  check_channel_device(weight, x, "batch_norm", "weight");
  check_channel_device(bias, x, "batch_norm", "bias");
  check_channel_device(running_mean, x, "batch_norm", "running_mean");
  check_channel_device(running_var, x, "batch_norm", "running_var");

  return dispatch_float(x.dtype(), "batch_norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Device dev = x.device();
    const cudaStream_t st = stream_of(x);
    Tensor xc = ops::contiguous(x);
    Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
    Tensor mean = Tensor::empty({L.c}, x.dtype(), dev), invstd = Tensor::empty({L.c}, x.dtype(), dev);
    Tensor coef = Tensor::empty({3, L.c}, x.dtype(), dev);
    const Split s = split_of(L.count());
    Tensor partial;
    if (training) {
      partial = Tensor::empty({L.c, s.chunks, 2}, DType::f64, dev);
      bn_stats_kernel<scalar_t><<<channel_grid(L, s), kThreads, 0, st>>>(xc.data<scalar_t>(), L, s,
                                                                          partial.data<double>());
      TETHER_CHECK_LAUNCH("bn_stats_kernel");
    }
    bn_forward_params_kernel<scalar_t><<<warp_channel_blocks(L.c), kThreads, 0, st>>>(
        xc.data<scalar_t>(), training ? partial.data<double>() : nullptr, L, s.chunks, training,
        channel_in(weight), channel_in(bias), channel_in(running_mean), channel_in(running_var),
        training ? channel_out(running_mean) : ChannelOut{}, training ? channel_out(running_var) : ChannelOut{},
        momentum, eps, mean.data<scalar_t>(), invstd.data<scalar_t>(), coef.data<scalar_t>());
    TETHER_CHECK_LAUNCH("bn_forward_params_kernel");
    bn_normalize_kernel<scalar_t><<<channel_grid(L, s), kThreads, 0, st>>>(
        xc.data<scalar_t>(), y.data<scalar_t>(), coef.data<scalar_t>(), L, s);
    TETHER_CHECK_LAUNCH("bn_normalize_kernel");
    if (save_mean) *save_mean = mean;
    if (save_invstd) *save_invstd = invstd;
    return y;
  });
}

void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, bool training, const Tensor& grad_x, const Tensor& grad_weight,
                         const Tensor& grad_bias, bool accumulate) {
  const BnLayout L = bn_layout(x);  // the op front checks the arguments
  check_channel_device(weight, x, "batch_norm_backward", "weight");
  check_channel_device(save_mean, x, "batch_norm_backward", "save_mean");
  check_channel_device(save_invstd, x, "batch_norm_backward", "save_invstd");
  check_channel_device(grad_weight, x, "batch_norm_backward", "grad_weight");
  check_channel_device(grad_bias, x, "batch_norm_backward", "grad_bias");
  TETHER_CHECK(grad_y.device() == x.device() && (!grad_x.defined() || grad_x.device() == x.device()),
               "batch_norm_backward: grad_y ", grad_y.str(), ", grad_x and input ", x.str(),
               " must be on one device");
  if (!grad_x.defined() && !grad_weight.defined() && !grad_bias.defined()) return;
  const bool need_sums = grad_weight.defined() || grad_bias.defined() || (training && grad_x.defined());

  // grad_x is written in place when contiguous, else through a temporary.
  Tensor gx_target;
  bool gx_add = accumulate;
  if (grad_x.defined()) {
    gx_target = grad_x.is_contiguous() ? grad_x : Tensor::empty(x.shape(), x.dtype(), x.device());
    if (!grad_x.is_contiguous()) gx_add = false;
  }

  dispatch_float(x.dtype(), "batch_norm_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Device dev = x.device();
    const cudaStream_t st = stream_of(x);
    Tensor xc = ops::contiguous(x), gy = ops::contiguous(grad_y);
    scalar_t* gxp = gx_target.defined() ? gx_target.data<scalar_t>() : nullptr;
    const Split s = split_of(L.count());
    const ChannelIn w = channel_in(weight), mean = channel_in(save_mean), invstd = channel_in(save_invstd);
    if (!need_sums) {  // eval, grad_x only
      bn_eval_grad_x_kernel<scalar_t><<<channel_grid(L, s), kThreads, 0, st>>>(gy.data<scalar_t>(), L, s, w, invstd,
                                                                               gxp, gx_add);
      TETHER_CHECK_LAUNCH("bn_eval_grad_x_kernel");
      return;
    }
    Tensor partial = Tensor::empty({L.c, s.chunks, 2}, DType::f64, dev);
    if (!training && gxp) {
      bn_backward_sums_kernel<scalar_t, true><<<channel_grid(L, s), kThreads, 0, st>>>(
          gy.data<scalar_t>(), xc.data<scalar_t>(), L, s, mean, w, invstd, partial.data<double>(), gxp, gx_add);
    } else {
      bn_backward_sums_kernel<scalar_t, false><<<channel_grid(L, s), kThreads, 0, st>>>(
          gy.data<scalar_t>(), xc.data<scalar_t>(), L, s, mean, w, invstd, partial.data<double>(), nullptr, false);
    }
    TETHER_CHECK_LAUNCH("bn_backward_sums_kernel");
    const bool training_gx = training && gxp;
    Tensor coef = training_gx ? Tensor::empty({4, L.c}, x.dtype(), dev) : Tensor();
    bn_backward_finalize_kernel<scalar_t><<<warp_channel_blocks(L.c), kThreads, 0, st>>>(
        partial.data<double>(), L, s.chunks, w, mean, invstd, channel_out(grad_weight), channel_out(grad_bias),
        accumulate, training_gx ? coef.data<scalar_t>() : nullptr);
    TETHER_CHECK_LAUNCH("bn_backward_finalize_kernel");
    if (training_gx) {
      bn_grad_x_kernel<scalar_t><<<channel_grid(L, s), kThreads, 0, st>>>(
          gy.data<scalar_t>(), xc.data<scalar_t>(), coef.data<scalar_t>(), L, s, gxp, gx_add);
      TETHER_CHECK_LAUNCH("bn_grad_x_kernel");
    }
  });

  if (grad_x.defined() && !grad_x.same(gx_target)) {
    if (accumulate) ops::axpy_(grad_x, 1.0, gx_target);
    else ops::copy_(grad_x, gx_target);
  }
}

}  // namespace tether::cuda
