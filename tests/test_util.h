// Shared helpers for the doctest suites.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace tether::testing {

// Seeded normal values; requires_grad for gradcheck inputs.
inline Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::f64, bool requires_grad = false) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, dtype);
  ops::normal_(t, 0.0, 1.0, gen);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline Tensor uniform(const Shape& shape, double lo, double hi, uint64_t seed, DType dtype = DType::f64,
                      bool requires_grad = false) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, dtype);
  ops::uniform_(t, lo, hi, gen);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

// Largest |a - b| / (atol + rtol |b|); <= 1 means close.
inline double close_ratio(const Tensor& a, const Tensor& b, double rtol, double atol) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double r = std::abs(x[i] - y[i]) / (atol + rtol * std::abs(y[i]));
    if (!(r <= worst)) worst = std::isnan(r) ? INFINITY : r;
  }
  return worst;
}

// The message of the tether::Error that `fn` throws, or "(no error)": for tests that check an
// error names its culprit (CHECK(contains(error_of(...), "--flag"))).
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define TETHER_CHECK_CLOSE(a, b, rtol, atol) CHECK(::tether::testing::close_ratio((a), (b), (rtol), (atol)) <= 1.0)

// Runs gradcheck(f, inputs[, options]) and reports the worst element on failure.
#define TETHER_GRADCHECK(...)                                   \
  do {                                                          \
    ::tether::GradcheckResult r_ = ::tether::gradcheck(__VA_ARGS__); \
    INFO(r_.message);                                           \
    CHECK(r_.ok);                                               \
  } while (0)

}  // namespace tether::testing
