// The per-element formulas of the elementwise ops, written once for both back ends: the unary
// and binary maps, the unary derivatives, clamp and its gradient. Inline templates marked
// TETHER_HOST_DEVICE: core/cpu/elementwise.cpp calls them in its loops, core/cuda/elementwise.cu
// in its device functors, so the two back ends compute the same expression for every element.
#pragma once
#include <cmath>

#include "core/host_device.h"
#include "core/ops.h"

namespace tether {

template <typename T>
TETHER_HOST_DEVICE inline T apply_unary(ops::Unary op, T x) {
  using ops::Unary;
  switch (op) {
    case Unary::neg: return -x;
    case Unary::exp: return std::exp(x);
    case Unary::log: return std::log(x);
    case Unary::sqrt: return std::sqrt(x);
    case Unary::abs: return std::abs(x);
    case Unary::sign: return static_cast<T>((x > T(0)) - (x < T(0)));
    case Unary::relu: return x > T(0) ? x : T(0);
    case Unary::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case Unary::silu: return x / (T(1) + std::exp(-x));
    case Unary::tanh: return std::tanh(x);
    case Unary::square: return x * x;
    case Unary::reciprocal: return T(1) / x;
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <typename T>
TETHER_HOST_DEVICE inline T unary_derivative(ops::Unary op, T x, T y) {
  using ops::Unary;
  switch (op) {
    case Unary::neg: return T(-1);
    case Unary::exp: return y;
    case Unary::log: return T(1) / x;
    case Unary::sqrt: return T(0.5) / y;
    case Unary::abs: return static_cast<T>((x > T(0)) - (x < T(0)));  // 0 at the kink, as PyTorch
    case Unary::sign: return T(0);
    case Unary::relu: return y > T(0) ? T(1) : T(0);  // y > 0 exactly where x > 0
    case Unary::sigmoid: return y * (T(1) - y);
    case Unary::silu: {
      const T s = T(1) / (T(1) + std::exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case Unary::tanh: return T(1) - y * y;
    case Unary::square: return T(2) * x;
    case Unary::reciprocal: return -y * y;
  }
  return T(0);
}

template <typename T>
TETHER_HOST_DEVICE inline T apply_binary(ops::Binary op, T a, T b) {
  using ops::Binary;
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
    case Binary::pow: return std::pow(a, b);
    case Binary::maximum: return a > b || std::isnan(a) ? a : b;
    case Binary::minimum: return a < b || std::isnan(a) ? a : b;
  }
  return a;
}

// clamp(v) to [lo, hi]; NaN stays NaN.
template <typename T>
TETHER_HOST_DEVICE inline T clamp_value(T v, T lo, T hi) {
  return std::isnan(v) ? v : (v < lo ? lo : (v > hi ? hi : v));
}

// The gradient of clamp: g where lo <= v <= hi, else 0.
template <typename T>
TETHER_HOST_DEVICE inline T clamp_grad(T g, T v, T lo, T hi) {
  return v >= lo && v <= hi ? g : T(0);
}

}  // namespace tether
