// CUDA 2-D convolution (NCHW, weight [O, C/groups, kh, kw]): forward, backward-data,
// backward-weight and backward-bias, mirroring core/cpu/conv.cpp.
//
// The convolutions are cuDNN calls (core/cuda/conv_cudnn.cpp) on contiguous copies of the
// inputs; a non-contiguous output is computed in a contiguous temporary and copied back.
// Cases cuDNN rejects are answered here as the CPU kernel answers them: an empty input or
// weight (zero channels, zero-size kernel, an all-padding image) gives a zero result, and a
// batch whose tensors pass cuDNN's 2^31-element limit runs in chunks of images (backward-
// weight sums the chunks with beta 1).
// Bias: forward adds it in a small kernel after the convolution (one rounding, like the CPU's
// conv + b); backward-bias is a deterministic two-pass reduction in double (fixed splits of
// each channel, fixed-order tree in each block, splits summed in order), as the CPU sums in double.
#include <algorithm>
#include <climits>

#include "core/cuda/common.h"
#include "core/cuda/conv_cudnn.h"
#include "core/cuda/kernels.h"

namespace tether::cuda {

namespace {

// ---- kernels ------------------------------------------------------------------------------------
// y[n, o, p] += bias[o] over y [N, O, P] (n elements).
template <typename T>
__global__ void add_channel_bias(T* y, const T* bias, int64_t O, int64_t P, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += bias[(i / P) % O];
}

// Block (o, s) sums split s of channel o of grad_y [N, O, P]: the channel's values taken in
// (n, p) order, per_split of them per split, into partial[o * splits + s].
template <typename T>
__global__ void bias_grad_partial(const T* gy, int64_t N, int64_t O, int64_t P, int64_t per_split, double* partial) {
  __shared__ double sums[kThreads];
  const int64_t o = blockIdx.x, s = blockIdx.y;
  const int64_t begin = s * per_split, end = begin + per_split < N * P ? begin + per_split : N * P;
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t n = i / P;
    acc += static_cast<double>(gy[(n * O + o) * P + (i - n * P)]);
  }
  sums[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[o * gridDim.y + s] = sums[0];
}

// grad_b[o] (=|+=) the sum of channel o's splits (grad_b's elements `stride` apart).
template <typename T>
__global__ void bias_grad_finish(const double* partial, int64_t O, int64_t splits, T* gb, int64_t stride,
                                 bool accumulate) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < O; o += int64_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int64_t k = 0; k < splits; ++k) s += partial[o * splits + k];
    T& out = gb[o * stride];
    out = static_cast<T>((accumulate ? out : T(0)) + s);
  }
}

// ---- tensor plumbing ----------------------------------------------------------------------------
// Runs fn(ptr) on a contiguous buffer for `out`: `out` itself when contiguous, else a
// temporary copied back afterwards (holding out's values first when accumulating).
template <typename Fn>
void with_contiguous_output(const Tensor& out, bool accumulate, Fn&& fn) {
  if (out.is_contiguous()) return fn(out.raw_data());
  Tensor tmp = accumulate ? out.clone() : Tensor::empty(out.shape(), out.dtype(), out.device());
  fn(tmp.raw_data());
  ops::copy_(out, tmp);
}

// Runs kernel(ptr) on a contiguous view of a backward output; when no gradient flows back
// (nothing to convolve) the output is zeroed, or left alone when accumulating.
template <typename Kernel>
void backward_into(const Tensor& out, bool accumulate, bool nothing_flows, Kernel kernel) {
  if (nothing_flows && accumulate) return;
  with_contiguous_output(out, accumulate, [&](void* p) {
    if (!nothing_flows) kernel(p);
    else TETHER_CHECK_CUDA(cudaMemsetAsync(p, 0, static_cast<size_t>(out.numel()) * element_size(out.dtype()),
                                           stream_of(out)));
  });
}

// Images per cuDNN call: cuDNN takes tensors of at most 2^31 - 1 elements, so a larger batch
// runs in chunks (one image past the limit is refused by conv_cudnn's checks).
int64_t images_per_call(const Shape& x, const Shape& y) {
  const int64_t per_image = std::max({x[1] * x[2] * x[3], y[1] * y[2] * y[3], int64_t{1}});
  return std::max<int64_t>(1, INT_MAX / per_image);
}

// Calls run(n0, count, x_image0, y_image0) for each chunk of images [n0, n0 + count) of the
// batch, with byte pointers to the chunk's first image in x [N, C, H, W] and y [N, O, OH, OW].
template <typename Run>
void for_each_chunk(const Shape& x, const Shape& y, DType dtype, void* xp, void* yp, Run&& run) {
  const int64_t step = images_per_call(x, y), es = static_cast<int64_t>(element_size(dtype));
  for (int64_t n0 = 0; n0 < x[0]; n0 += step) {
    const int64_t count = std::min(step, x[0] - n0);
    run(n0, count, static_cast<char*>(xp) + n0 * x[1] * x[2] * x[3] * es,
        static_cast<char*>(yp) + n0 * y[1] * y[2] * y[3] * es);
  }
}

Shape with_batch(Shape s, int64_t n) {
  s[0] = n;
  return s;
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dParams& p) {
  const Shape ys = ops::conv2d_output_shape(x_in.shape(), w_in.shape(), p);
  Tensor y = Tensor::empty(ys, x_in.dtype(), x_in.device());
  if (y.numel() == 0) return y;
  const Tensor x = ops::contiguous(x_in), w = ops::contiguous(w_in);
  const Tensor bias = bias_in.defined() ? ops::contiguous(bias_in) : Tensor();
  const int dev = device_of(y);
  if (x.numel() == 0 || w.numel() == 0) {  // nothing to convolve: conv(x, w) = 0
    TETHER_CHECK_CUDA(cudaMemsetAsync(y.raw_data(), 0, static_cast<size_t>(y.numel()) * element_size(y.dtype()),
                                      stream(dev)));
  } else {
    for_each_chunk(x.shape(), ys, x.dtype(), x.raw_data(), y.raw_data(), [&](int64_t, int64_t count, void* xc, void* yc) {
      cudnn_convolution(ConvDirection::forward, dev, x.dtype(), with_batch(x.shape(), count), w.shape(), p, xc,
                        w.raw_data(), yc, false);
    });
  }
  if (bias.defined()) {
    dispatch_float(y.dtype(), "conv2d", [&](auto tag_) {
      using scalar_t = decltype(tag_);
      const int64_t n = y.numel();
      add_channel_bias<scalar_t><<<blocks_for(n), kThreads, 0, stream(dev)>>>(
          y.data<scalar_t>(), bias.data<scalar_t>(), ys[1], ys[2] * ys[3], n);
      TETHER_CHECK_LAUNCH("add_channel_bias");
    });
  }
  return y;
}

void conv2d_backward_data(const Tensor& grad_y, const Tensor& w_in, const Conv2dParams& p, const Tensor& grad_x,
                          bool accumulate) {
  const Shape& ys = grad_y.shape();  // conv2d_output_shape(grad_x, w): checked by the op front
  if (grad_x.numel() == 0) return;
  const Tensor gy = ops::contiguous(grad_y), w = ops::contiguous(w_in);
  const int dev = device_of(gy);
  // An empty weight (a zero-size kernel) makes grad_x 0, as an empty grad_y does.
  backward_into(grad_x, accumulate, gy.numel() == 0 || w.numel() == 0, [&](void* gx) {
    for_each_chunk(grad_x.shape(), ys, gy.dtype(), gx, gy.raw_data(), [&](int64_t, int64_t count, void* gxc, void* gyc) {
      cudnn_convolution(ConvDirection::backward_data, dev, gy.dtype(), with_batch(grad_x.shape(), count), w.shape(),
                        p, gxc, w.raw_data(), gyc, accumulate);
    });
  });
}

void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x_in, const Conv2dParams& p, const Tensor& grad_w,
                            bool accumulate) {
  const Shape& ys = grad_y.shape();  // conv2d_output_shape(x, grad_w): checked by the op front
  if (grad_w.numel() == 0) return;
  const Tensor gy = ops::contiguous(grad_y), x = ops::contiguous(x_in);
  const int dev = device_of(gy);
  // An empty input (all padding) makes grad_w 0, as an empty grad_y does.
  backward_into(grad_w, accumulate, gy.numel() == 0 || x.numel() == 0, [&](void* gw) {
    for_each_chunk(x.shape(), ys, gy.dtype(), x.raw_data(), gy.raw_data(), [&](int64_t n0, int64_t count, void* xc, void* gyc) {
      // Later chunks add to the earlier ones.
      cudnn_convolution(ConvDirection::backward_weight, dev, gy.dtype(), with_batch(x.shape(), count),
                        grad_w.shape(), p, xc, gw, gyc, accumulate || n0 > 0);
    });
  });
}

void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate) {
  const Tensor gy = ops::contiguous(grad_y);
  const int64_t N = gy.size(0), O = gy.size(1), P = gy.size(2) * gy.size(3);
  if (O == 0) return;
  const int dev = device_of(gy);
  // Splits per channel: enough blocks to fill the GPU, each summing at least 4096 values.
  const int64_t total = N * P;
  const int64_t splits = std::clamp<int64_t>(std::min((total + 4095) / 4096, (1023 + O) / O), 1, 65535);
  const int64_t per_split = (total + splits - 1) / splits;
  TETHER_CHECK(O <= INT_MAX, "conv2d_backward_bias: ", O, " channels exceed the CUDA grid");
  const Tensor partial = Tensor::empty({O * splits}, DType::f64, gy.device());
  dispatch_float(gy.dtype(), "conv2d_backward_bias", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const dim3 grid(static_cast<unsigned>(O), static_cast<unsigned>(splits));
    bias_grad_partial<scalar_t><<<grid, kThreads, 0, stream(dev)>>>(gy.data<scalar_t>(), N, O, P, per_split,
                                                                      partial.data<double>());
    TETHER_CHECK_LAUNCH("bias_grad_partial");
    bias_grad_finish<scalar_t><<<blocks_for(O), kThreads, 0, stream(dev)>>>(
        partial.data<double>(), O, splits, grad_b.data<scalar_t>(), grad_b.stride(0), accumulate);
    TETHER_CHECK_LAUNCH("bias_grad_finish");
  });
}

}  // namespace tether::cuda
