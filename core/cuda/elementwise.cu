// Elementwise kernels on CUDA (core/cpu/elementwise.cpp on the GPU): unary maps, broadcasting
// binary maps, their derivatives, axpy. The per-element formulas are the CPU's (core/scalar_math.h),
// called from device functors (one kernel instantiation per op, so the loop is branch-free);
// contiguous operands take a plain grid-stride loop, strided or broadcast ones go through
// StridedIndexer.
#include <cmath>
#include <type_traits>

#include "core/cuda/common.h"
#include "core/cuda/elem_util.cuh"
#include "core/cuda/kernels.h"
#include "core/scalar_math.h"
#include "core/shapes.h"

namespace tether::cuda {

namespace {

// ---- functors (device lambdas would need nvcc's --extended-lambda) ----------------------------
template <Unary op>
struct UnaryFn {
  template <typename T>
  __device__ T operator()(T v) const { return apply_unary(op, v); }
};
template <Unary op>
struct UnaryGradFn {  // grad * f'(x)
  template <typename T>
  __device__ T operator()(T g, T x, T y) const { return g * unary_derivative(op, x, y); }
};
template <Binary op>
struct BinaryFn {
  template <typename T>
  __device__ T operator()(T a, T b) const { return apply_binary(op, a, b); }
};
template <typename T>
struct AddScalarFn {
  T c;
  __device__ T operator()(T v) const { return static_cast<T>(v + c); }
};
template <typename T>
struct MulScalarFn {
  T c;
  __device__ T operator()(T v) const { return v * c; }
};
template <typename T>
struct SquareFn {
  __device__ T operator()(T v) const { return v * v; }
};
template <typename T>
struct PowScalarFn {
  T c;
  __device__ T operator()(T v) const { return std::pow(v, c); }
};
template <typename T>
struct ClampFn {
  T lo, hi;
  __device__ T operator()(T v) const { return clamp_value(v, lo, hi); }
};
template <typename T>
struct ClampGradFn {
  T lo, hi;
  __device__ T operator()(T g, T v) const { return clamp_grad(g, v, lo, hi); }
};

// ---- kernels: out[i] = f(...) with out contiguous ------------------------------------------
template <typename T, typename F>
__global__ void map1_contiguous_kernel(T* out, const T* x, int64_t n, F f) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) out[i] = f(x[i]);
}

template <typename T, typename F>
__global__ void map1_strided_kernel(T* out, const T* x, StridedIndexer<1> ix, int64_t n, F f) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[1];
    ix.offsets(i, off);
    out[i] = f(x[off[0]]);
  }
}

template <typename T, typename F>
__global__ void map2_contiguous_kernel(T* out, const T* a, const T* b, int64_t n, F f) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) out[i] = f(a[i], b[i]);
}

template <typename T, typename F>
__global__ void map2_strided_kernel(T* out, const T* a, const T* b, StridedIndexer<2> ix, int64_t n, F f) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    ix.offsets(i, off);
    out[i] = f(a[off[0]], b[off[1]]);
  }
}

template <typename T, typename F>
__global__ void map3_contiguous_kernel(T* out, const T* a, const T* b, const T* c, int64_t n, F f) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) out[i] = f(a[i], b[i], c[i]);
}

// y[i] += a * x[i], y and x of one shape.
template <typename T>
__global__ void axpy_contiguous_kernel(T* y, T a, const T* x, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) y[i] += a * x[i];
}

template <typename T>
__global__ void axpy_strided_kernel(T* y, T a, const T* x, StridedIndexer<2> ix, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    ix.offsets(i, off);
    y[off[0]] += a * x[off[1]];
  }
}

template <typename T>
__global__ void scale_contiguous_kernel(T* y, T c, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) y[i] *= c;
}

template <typename T>
__global__ void scale_strided_kernel(T* y, T c, StridedIndexer<1> ix, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[1];
    ix.offsets(i, off);
    y[off[0]] *= c;
  }
}

// ---- launchers --------------------------------------------------------------------------------
// out = f(x) over any strides of x; out is fresh and contiguous.
template <typename T, typename F>
Tensor map1(const Tensor& x, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  cudaStream_t stream = stream_of(x);
  if (n == 0) return out;
  if (x.is_contiguous()) {
    map1_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out.data<T>(), x.data<T>(), n, f);
    TETHER_CHECK_LAUNCH("map1_contiguous_kernel");
    return out;
  }
  const StridedIndexer<1> ix = make_indexer<1>(x.shape(), {x.strides()});
  map1_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out.data<T>(), x.data<T>(), ix, n, f);
  TETHER_CHECK_LAUNCH("map1_strided_kernel");
  return out;
}

// out = f(a, b) with broadcasting.
template <typename T, typename F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const int64_t n = out.numel();
  cudaStream_t stream = stream_of(a);
  T* o = out.data<T>();
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  if (n == 0) return out;
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    map2_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(o, ap, bp, n, f);
    TETHER_CHECK_LAUNCH("map2_contiguous_kernel");
    return out;
  }
  const StridedIndexer<2> ix =
      make_indexer<2>(shape, {broadcast_strides(a, shape), broadcast_strides(b, shape)});
  map2_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(o, ap, bp, ix, n, f);
  TETHER_CHECK_LAUNCH("map2_strided_kernel");
  return out;
}

// out = f(a, b, c), all contiguous of n elements.
template <typename T, typename F>
void map3_contiguous(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  const int64_t n = out.numel();
  cudaStream_t stream = stream_of(out);
  if (n == 0) return;
  map3_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out.data<T>(), a.data<T>(), b.data<T>(),
                                                                 c.data<T>(), n, f);
  TETHER_CHECK_LAUNCH("map3_contiguous_kernel");
}

// One instantiation per op, so the inner loop is branch-free.
template <typename T>
Tensor unary_typed(Unary op, const Tensor& x) {
  switch (op) {
#define TETHER_UNARY_CASE(name) \
  case Unary::name: return map1<T>(x, UnaryFn<Unary::name>{});
    TETHER_UNARY_CASE(neg) TETHER_UNARY_CASE(exp) TETHER_UNARY_CASE(log) TETHER_UNARY_CASE(sqrt)
    TETHER_UNARY_CASE(abs) TETHER_UNARY_CASE(sign) TETHER_UNARY_CASE(relu) TETHER_UNARY_CASE(sigmoid)
    TETHER_UNARY_CASE(silu) TETHER_UNARY_CASE(tanh) TETHER_UNARY_CASE(square) TETHER_UNARY_CASE(reciprocal)
#undef TETHER_UNARY_CASE
  }
  TETHER_FAIL("unknown unary op");
}

template <typename T>
Tensor binary_typed(Binary op, const Tensor& a, const Tensor& b) {
  switch (op) {
#define TETHER_BINARY_CASE(name) \
  case Binary::name: return map2<T>(a, b, BinaryFn<Binary::name>{});
    TETHER_BINARY_CASE(add) TETHER_BINARY_CASE(sub) TETHER_BINARY_CASE(mul) TETHER_BINARY_CASE(div)
    TETHER_BINARY_CASE(pow) TETHER_BINARY_CASE(maximum) TETHER_BINARY_CASE(minimum)
#undef TETHER_BINARY_CASE
  }
  TETHER_FAIL("unknown binary op");
}

// out = grad * f'(x, y) over contiguous operands, one instantiation per op.
template <typename T>
void unary_backward_typed(Unary op, const Tensor& out, const Tensor& g, const Tensor& x, const Tensor& y) {
  switch (op) {
#define TETHER_UNARY_CASE(name) \
  case Unary::name: return map3_contiguous<T>(out, g, x, y, UnaryGradFn<Unary::name>{});
    TETHER_UNARY_CASE(neg) TETHER_UNARY_CASE(exp) TETHER_UNARY_CASE(log) TETHER_UNARY_CASE(sqrt)
    TETHER_UNARY_CASE(abs) TETHER_UNARY_CASE(sign) TETHER_UNARY_CASE(relu) TETHER_UNARY_CASE(sigmoid)
    TETHER_UNARY_CASE(silu) TETHER_UNARY_CASE(tanh) TETHER_UNARY_CASE(square) TETHER_UNARY_CASE(reciprocal)
#undef TETHER_UNARY_CASE
  }
  TETHER_FAIL("unknown unary op");
}

}  // namespace

Tensor unary(Unary op, const Tensor& x) {
  return dispatch_float(x.dtype(), "unary op", [&](auto tag_) {
    using scalar_t = decltype(tag_); return unary_typed<scalar_t>(op, x); });
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
  return dispatch_float(a.dtype(), "binary op", [&](auto tag_) {
    using scalar_t = decltype(tag_); return binary_typed<scalar_t>(op, a, b); });
}

Tensor add_scalar(const Tensor& x, double s) {
  return dispatch_all(x.dtype(), "add_scalar", [&](auto tag_) {  // integers too (counters)
    using scalar_t = decltype(tag_);
    return map1<scalar_t>(x, AddScalarFn<scalar_t>{static_cast<scalar_t>(s)});
  });
}

Tensor mul_scalar(const Tensor& x, double s) {
  return dispatch_float(x.dtype(), "mul_scalar", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    return map1<scalar_t>(x, MulScalarFn<scalar_t>{static_cast<scalar_t>(s)});
  });
}

Tensor pow_scalar(const Tensor& x, double p) {
  return dispatch_float(x.dtype(), "pow_scalar", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    if (p == 2.0) return map1<scalar_t>(x, SquareFn<scalar_t>{});
    return map1<scalar_t>(x, PowScalarFn<scalar_t>{static_cast<scalar_t>(p)});
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  return dispatch_float(x.dtype(), "clamp", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    return map1<scalar_t>(x, ClampFn<scalar_t>{static_cast<scalar_t>(lo), static_cast<scalar_t>(hi)});
  });
}

Tensor unary_backward(Unary op, const Tensor& grad, const Tensor& x, const Tensor& y) {
  const Shape& shape = x.defined() ? x.shape() : y.shape();  // checked by the op front
  return dispatch_float(grad.dtype(), "unary_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    // x may be omitted for ops whose derivative needs only y (see ops::unary_backward).
    // The other operand is never read: each derivative reads x, or (those ops) y alone.
    const bool reads_y = ops::derivative_needs_only_output(op);
    Tensor g = ops::contiguous(grad);
    Tensor xc = x.defined() ? ops::contiguous(x) : Tensor();
    Tensor yc = y.defined() ? ops::contiguous(y) : (reads_y ? cuda::unary(op, xc) : xc);
    if (!xc.defined()) xc = yc;
    Tensor out = Tensor::empty(shape, yc.dtype(), grad.device());
    unary_backward_typed<scalar_t>(op, out, g, xc, yc);
    return out;
  });
}

Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  return dispatch_float(x.dtype(), "clamp_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    return map2<scalar_t>(grad, x, ClampGradFn<scalar_t>{static_cast<scalar_t>(lo), static_cast<scalar_t>(hi)});
  });
}

void axpy_(const Tensor& y, double alpha, const Tensor& x) {
  dispatch_float(y.dtype(), "axpy_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t a = static_cast<scalar_t>(alpha);
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    const int64_t n = y.numel();
    cudaStream_t stream = stream_of(y);
    if (n == 0) return;
    if (y.is_contiguous() && x.is_contiguous()) {
      axpy_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(yp, a, xp, n);
      TETHER_CHECK_LAUNCH("axpy_contiguous_kernel");
      return;
    }
    const StridedIndexer<2> ix = make_indexer<2>(y.shape(), {y.strides(), x.strides()});
    axpy_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(yp, a, xp, ix, n);
    TETHER_CHECK_LAUNCH("axpy_strided_kernel");
  });
}

void scale_(const Tensor& y, double s) {
  dispatch_float(y.dtype(), "scale_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t c = static_cast<scalar_t>(s);
    scalar_t* yp = y.data<scalar_t>();
    const int64_t n = y.numel();
    cudaStream_t stream = stream_of(y);
    if (n == 0) return;
    if (y.is_contiguous()) {
      scale_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(yp, c, n);
      TETHER_CHECK_LAUNCH("scale_contiguous_kernel");
      return;
    }
    const StridedIndexer<1> ix = make_indexer<1>(y.shape(), {y.strides()});
    scale_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(yp, c, ix, n);
    TETHER_CHECK_LAUNCH("scale_strided_kernel");
  });
}

}  // namespace tether::cuda
