// Element types. Float tensors are f32 (everywhere) or f64 (CPU; gradient checks);
// i64 holds labels and indices, u8 raw image bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/check.h"

namespace tether {

enum class DType : uint8_t { f32, f64, i64, u8 };

inline size_t element_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

}  // namespace tether

namespace tether {

// Calls fn(T{}) with T the C++ type of a floating dtype; the lambda names it with
//   dispatch_float(t.dtype(), "op", [&](auto tag) { using scalar_t = decltype(tag); ... });
// (a function, not a macro, so the body may hold #pragma omp).
template <typename Fn>
decltype(auto) dispatch_float(DType dtype, const char* name, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    default: break;
  }
  TETHER_FAIL(name, ": expected a floating tensor (f32/f64), got ", dtype_name(dtype));
}

// Same, over every dtype.
template <typename Fn>
decltype(auto) dispatch_all(DType dtype, const char* name, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::i64: return fn(int64_t{});
    case DType::u8: return fn(uint8_t{});
  }
  TETHER_FAIL(name, ": unknown dtype");
}

}  // namespace tether
