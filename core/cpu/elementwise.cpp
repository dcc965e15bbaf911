// Elementwise kernels: unary maps, broadcasting binary maps, their derivatives, axpy.
// Each op is one small functor over the formulas of core/scalar_math.h; the strided loop
// (core/cpu/strided.h) does the rest.
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/scalar_math.h"

namespace tether::cpu {

namespace {

// out[i] = f(x[i]) over any strides of x; out is fresh and contiguous.
template <typename T, typename F>
Tensor map1(const Tensor& x, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  T* o = out.data<T>();
  const T* xp = x.data<T>();
  if (x.is_contiguous()) {
    parallel_chunks(x.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = f(xp[i]);
    });
    return out;
  }
  for_each_row<2>(x.shape(), {out.strides(), x.strides()},
                  [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    for (int64_t i = 0; i < n; ++i) o[off[0] + i * st[0]] = f(xp[off[1] + i * st[1]]);
                  });
  return out;
}

// out = f(a, b) with broadcasting.
template <typename T, typename F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype());
  T* o = out.data<T>();
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    parallel_chunks(out.numel(), [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) o[i] = f(ap[i], bp[i]);
    });
    return out;
  }
  for_each_row<3>(shape, {out.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)},
                  [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
                    T* op = o + off[0];
                    const T* aq = ap + off[1];
                    const T* bq = bp + off[2];
                    // Fast paths for the common layouts (a bias or scale broadcast over a plane).
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                      for (int64_t i = 0; i < n; ++i) op[i] = f(aq[i], bq[i]);
                    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                      const T bv = *bq;
                      for (int64_t i = 0; i < n; ++i) op[i] = f(aq[i], bv);
                    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                      const T av = *aq;
                      for (int64_t i = 0; i < n; ++i) op[i] = f(av, bq[i]);
                    } else {
                      for (int64_t i = 0; i < n; ++i) op[i * st[0]] = f(aq[i * st[1]], bq[i * st[2]]);
                    }
                  });
  return out;
}

}  // namespace

// One instantiation per op, so the inner loop is branch-free.
template <typename T>
Tensor unary_typed(Unary op, const Tensor& x) {
  switch (op) {
#define TETHER_UNARY_CASE(name) \
  case Unary::name: return map1<T>(x, [](T v) { return apply_unary(Unary::name, v); });
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
  case Binary::name: return map2<T>(a, b, [](T u, T v) { return apply_binary(Binary::name, u, v); });
    TETHER_BINARY_CASE(add) TETHER_BINARY_CASE(sub) TETHER_BINARY_CASE(mul) TETHER_BINARY_CASE(div)
    TETHER_BINARY_CASE(pow) TETHER_BINARY_CASE(maximum) TETHER_BINARY_CASE(minimum)
#undef TETHER_BINARY_CASE
  }
  TETHER_FAIL("unknown binary op");
}

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
    const scalar_t c = static_cast<scalar_t>(s);
    return map1<scalar_t>(x, [c](scalar_t v) { return static_cast<scalar_t>(v + c); });
  });
}

Tensor mul_scalar(const Tensor& x, double s) {
  return dispatch_float(x.dtype(), "mul_scalar", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t c = static_cast<scalar_t>(s);
    return map1<scalar_t>(x, [c](scalar_t v) { return v * c; });
  });
}

Tensor pow_scalar(const Tensor& x, double p) {
  return dispatch_float(x.dtype(), "pow_scalar", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t c = static_cast<scalar_t>(p);
    if (p == 2.0) return map1<scalar_t>(x, [](scalar_t v) { return v * v; });
    return map1<scalar_t>(x, [c](scalar_t v) { return std::pow(v, c); });
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  return dispatch_float(x.dtype(), "clamp", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t l = static_cast<scalar_t>(lo), h = static_cast<scalar_t>(hi);
    return map1<scalar_t>(x, [l, h](scalar_t v) { return clamp_value(v, l, h); });
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
    Tensor yc = y.defined() ? ops::contiguous(y) : (reads_y ? cpu::unary(op, xc) : xc);
    if (!xc.defined()) xc = yc;
    Tensor out = Tensor::empty(shape, yc.dtype());
    scalar_t* o = out.data<scalar_t>();
    const scalar_t *gp = g.data<scalar_t>(), *xp = xc.data<scalar_t>(), *yp = yc.data<scalar_t>();
    auto run = [&](auto op_constant) {  // op as a compile-time constant: a branch-free loop
      parallel_chunks(out.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = gp[i] * unary_derivative(decltype(op_constant)::value, xp[i], yp[i]);
      });
    };
    switch (op) {
      case Unary::relu: run(std::integral_constant<Unary, Unary::relu>{}); break;
      case Unary::sigmoid: run(std::integral_constant<Unary, Unary::sigmoid>{}); break;
      case Unary::silu: run(std::integral_constant<Unary, Unary::silu>{}); break;
      case Unary::tanh: run(std::integral_constant<Unary, Unary::tanh>{}); break;
      default:
        parallel_chunks(out.numel(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) o[i] = gp[i] * unary_derivative(op, xp[i], yp[i]);
        });
    }
    return out;
  });
}

Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi) {
  return dispatch_float(x.dtype(), "clamp_backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t l = static_cast<scalar_t>(lo), h = static_cast<scalar_t>(hi);
    return map2<scalar_t>(grad, x, [l, h](scalar_t g, scalar_t v) { return clamp_grad(g, v, l, h); });
  });
}

void axpy_(const Tensor& y, double alpha, const Tensor& x) {
  dispatch_float(y.dtype(), "axpy_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t a = static_cast<scalar_t>(alpha);
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    if (y.is_contiguous() && x.is_contiguous()) {
      parallel_chunks(y.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) yp[i] += a * xp[i];
      });
      return;
    }
    for_each_row<2>(y.shape(), {y.strides(), x.strides()},
                    [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                      for (int64_t i = 0; i < n; ++i) yp[off[0] + i * st[0]] += a * xp[off[1] + i * st[1]];
                    });
  });
}

void scale_(const Tensor& y, double s) {
  dispatch_float(y.dtype(), "scale_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const scalar_t c = static_cast<scalar_t>(s);
    scalar_t* yp = y.data<scalar_t>();
    for_each_row<1>(y.shape(), {y.strides()},
                    [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
                      for (int64_t i = 0; i < n; ++i) yp[off[0] + i * st[0]] *= c;
                    });
  });
}

}  // namespace tether::cpu
