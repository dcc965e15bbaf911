// The closed-form penalty kernels of regularizers/sp_kernels.h. One inner loop per shape of
// work: `sweep` visits a range of elements once, computing Δ (and F) per element, adding the
// element's value to 8 running sums (independent chains, so the loop is not latency-bound; their
// order is fixed, so results do not depend on threads) and writing k·∂V/∂x. Which of c, F and the
// gradient exist are template parameters, so the loop has no branches per element. CUDA tensors
// go to the fused multi-tensor kernels (regularizers/cuda/sp_fused.h).
#include "regularizers/sp_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "regularizers/cuda/sp_fused.h"

namespace tether::reg::kernels {
namespace {

constexpr int64_t kChunk = 1 << 15;  // elements per chunk: below this a tensor runs serially

enum Mode { kValueOnly = 0, kAccumulate = 1, kOverwrite = 2 };

// Per-chunk partial results, reused from call to call (grows only).
double* scratch(int64_t count) {
  thread_local std::vector<double> buffer;
  if (static_cast<int64_t>(buffer.size()) < count) buffer.resize(static_cast<size_t>(count));
  return buffer.data();
}

template <typename T>
struct Ptrs {
  const T* x;
  const T* c;  // null: c = 0
  const T* f;  // null: F = 1
  T* g;        // null: value only
  double k;
};

// Σ_{i∈[lo,hi)} v(Δ_i, F_i), writing g_i (+)= k·dv(Δ_i, F_i) on the way. `elem(d, f, dv)`
// returns v and sets dv, computing in C (double by default; smooth L1 computes in T, as its
// sqrt and divisions are the loop's cost); the sums are double either way.
template <typename T, bool HasC, bool HasF, int M, typename Elem, typename C = double>
double sweep(const Ptrs<T>& p, int64_t lo, int64_t hi, Elem elem) {
  auto one = [&](int64_t i) -> double {
    const C d = HasC ? static_cast<C>(p.x[i]) - static_cast<C>(p.c[i]) : static_cast<C>(p.x[i]);
    const C f = HasF ? static_cast<C>(p.f[i]) : C(1);
    C dv = 0;
    const C v = elem(d, f, dv);
    if constexpr (M == kAccumulate) p.g[i] = static_cast<T>(static_cast<double>(p.g[i]) + p.k * dv);
    if constexpr (M == kOverwrite) p.g[i] = static_cast<T>(p.k * dv);
    return v;
  };
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += one(i + j);
  double tail = 0;
  for (; i < hi; ++i) tail += one(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

// Σ over `chunks` chunks of chunk(b), the chunks in parallel, their results added in order.
template <typename Chunk>
double ordered_sum(int64_t chunks, Chunk chunk) {
  if (chunks <= 1) return chunks == 1 ? chunk(0) : 0.0;  // = 0 + chunk(0), as below
  double* partial = scratch(chunks);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < chunks; ++b) partial[b] = chunk(b);
  double total = 0;
  for (int64_t b = 0; b < chunks; ++b) total += partial[b];
  return total;
}

// Calls fn(std::integral_constant<bool, HasC>, <bool, HasF>, <int, Mode>) for the runtime flags.
template <typename Fn>
double with_flags(bool has_c, bool has_f, int mode, Fn fn) {
  auto m = [&](auto hc, auto hf) {
    if (mode == kAccumulate) return fn(hc, hf, std::integral_constant<int, kAccumulate>{});
    if (mode == kOverwrite) return fn(hc, hf, std::integral_constant<int, kOverwrite>{});
    return fn(hc, hf, std::integral_constant<int, kValueOnly>{});
  };
  auto f = [&](auto hc) { return has_f ? m(hc, std::true_type{}) : m(hc, std::false_type{}); };
  return has_c ? f(std::true_type{}) : f(std::false_type{});
}

// SPEC 1 rows.
struct Rows {
  int64_t count, len;
};
Rows rows_of(const Tensor& x) {
  const int64_t r = x.dim() == 0 ? 1 : x.shape()[0];
  return {r, r == 0 ? 0 : x.numel() / r};
}
int64_t rows_per_chunk(const Rows& r) { return std::max<int64_t>(1, kChunk / std::max<int64_t>(1, r.len)); }

void check_operand(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  TETHER_CHECK(t.shape() == x.shape() && t.dtype() == x.dtype() && t.is_contiguous() && t.device().is_cpu(),
               "penalty kernel: ", what, " ", t.str(), " does not match the parameter ", x.str(),
               " (same shape and dtype, contiguous, CPU)");
}

// Checks the operands, then calls body(T{}, Ptrs<T>, mode) with T the element type.
template <typename Body>
double run(const Tensor& x, const Tensor& c, const Tensor& f, const GradOut& out, Body body) {
  TETHER_CHECK(x.device().is_cpu() && x.is_contiguous(), "penalty kernel: the parameter ", x.str(),
               " must be a contiguous CPU tensor");
  TETHER_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, "penalty kernel: f32 or f64 expected, got ",
               dtype_name(x.dtype()));
  check_operand(x, c, "reference");
  check_operand(x, f, "Fisher weights");
  check_operand(x, out.g, "gradient buffer");
  const int mode = !out.g.defined() ? kValueOnly : out.overwrite ? kOverwrite : kAccumulate;
  auto typed = [&](auto zero) {
    using T = decltype(zero);
    const Ptrs<T> p{x.data<T>(), c.defined() ? c.data<T>() : nullptr, f.defined() ? f.data<T>() : nullptr,
                    out.g.defined() ? out.g.data<T>() : nullptr, out.k};
    return body(zero, p, mode);
  };
  return x.dtype() == DType::f64 ? typed(double{}) : typed(float{});
}

// An elementwise penalty: chunks of kChunk elements; InT: elem computes in the tensor's type.
template <bool InT = false, typename Elem>
double elementwise(const Tensor& x, const Tensor& c, const Tensor& f, const GradOut& out, Elem elem) {
  return run(x, c, f, out, [&](auto zero, const auto& p, int mode) {
    using T = decltype(zero);
    using C = std::conditional_t<InT, T, double>;
    const int64_t n = x.numel();
    return with_flags(p.c != nullptr, p.f != nullptr, mode, [&](auto hc, auto hf, auto m) {
      return ordered_sum((n + kChunk - 1) / kChunk, [&](int64_t b) {
        return sweep<T, decltype(hc)::value, decltype(hf)::value, decltype(m)::value, Elem, C>(
            p, b * kChunk, std::min(n, (b + 1) * kChunk), elem);
      });
    });
  });
}

// A CUDA tensor's kernel: the fused one on a list of one.
double on_cuda(Kind kind, const Tensor& x, const Tensor& c, const Tensor& f, double eps, const GradOut& out) {
  return cuda::sp_values(kind, {Operands{x, c, f, out}}, eps)[0];
}

}  // namespace

double squared_distance(const Tensor& x, const Tensor& c, const Tensor& f, const GradOut& out) {
  if (x.device().is_cuda()) return on_cuda(Kind::squared_distance, x, c, f, 0.0, out);
  return elementwise(x, c, f, out, [](double d, double fw, double& dv) {
    const double fd = fw * d;
    dv = 2.0 * fd;
    return fd * d;
  });
}

double smooth_l1(const Tensor& x, const Tensor& c, double eps, const GradOut& out) {
  if (x.device().is_cuda()) return on_cuda(Kind::smooth_l1, x, c, Tensor(), eps, out);
  // In the tensor's type (f32 for training, as the autograd path); the sum is still double.
  return elementwise<true>(x, c, Tensor(), out, [eps](auto d, auto, auto& dv) {
    using C = decltype(d);
    const C e = static_cast<C>(eps), s = std::sqrt(d * d + e * e);
    dv = d / s;
    return d * d / (s + e);  // = s − ε without cancellation
  });
}

double group_lasso(const Tensor& x, const Tensor& c, const Tensor& f, double eps, const GradOut& out) {
  if (x.device().is_cuda()) return on_cuda(Kind::group_lasso, x, c, f, eps, out);
  const Rows rows = rows_of(x);
  const double sqrt_p = std::sqrt(static_cast<double>(rows.len)), eps2 = eps * eps;
  const int64_t per = rows_per_chunk(rows);
  return run(x, c, f, out, [&](auto zero, const auto& p, int mode) {
    using T = decltype(zero);
    return with_flags(p.c != nullptr, p.f != nullptr, mode, [&](auto hc, auto hf, auto m) {
      return ordered_sum((rows.count + per - 1) / per, [&](int64_t b) {
        double value = 0;
        for (int64_t r = b * per; r < std::min(rows.count, (b + 1) * per); ++r) {
          const int64_t lo = r * rows.len, hi = lo + rows.len;
          // sweep 1: q_r = Σ F Δ² (value only); sweep 2, the row still in cache: the gradient.
          const double q = sweep<T, decltype(hc)::value, decltype(hf)::value, kValueOnly>(p, lo, hi, [](double d, double fw, double&) {
            return fw * d * d;
          });
          const double n = std::sqrt(q + eps2);
          value += sqrt_p * (q / (n + eps));
          if constexpr (decltype(m)::value != kValueOnly) {
            const double scale = sqrt_p / n;
            sweep<T, decltype(hc)::value, decltype(hf)::value, decltype(m)::value>(p, lo, hi, [scale](double d, double fw, double& dv) {
              dv = scale * fw * d;
              return 0.0;
            });
          }
        }
        return value;
      });
    });
  });
}

double mars(const Tensor& x, const Tensor& c, const GradOut& out) {
  if (x.device().is_cuda()) return on_cuda(Kind::mars, x, c, Tensor(), 0.0, out);
  const Rows rows = rows_of(x);
  if (rows.count == 0) return 0.0;
  const int64_t per = rows_per_chunk(rows), chunks = (rows.count + per - 1) / per;
  return run(x, c, Tensor(), out, [&](auto zero, const auto& p, int mode) {
    using T = decltype(zero);
    // 1. every row's L1 norm; per chunk the largest and its first row, chunks combined in order.
    double* best = scratch(2 * chunks);  // [value, row] per chunk
    auto chunk_best = [&](int64_t b) {
      double top = -1, top_row = 0;
      for (int64_t r = b * per; r < std::min(rows.count, (b + 1) * per); ++r) {
        const double l1 = p.c ? sweep<T, true, false, kValueOnly>(p, r * rows.len, (r + 1) * rows.len,
                                                                     [](double d, double, double&) { return std::abs(d); })
                              : sweep<T, false, false, kValueOnly>(p, r * rows.len, (r + 1) * rows.len,
                                                                      [](double d, double, double&) { return std::abs(d); });
        if (l1 > top) top = l1, top_row = static_cast<double>(r);  // strict: the first on ties
      }
      best[2 * b] = top, best[2 * b + 1] = top_row;
    };
    if (chunks == 1) {
      chunk_best(0);
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t b = 0; b < chunks; ++b) chunk_best(b);
    }
    double top = best[0];
    int64_t row = static_cast<int64_t>(best[1]);
    for (int64_t b = 1; b < chunks; ++b)
      if (best[2 * b] > top) top = best[2 * b], row = static_cast<int64_t>(best[2 * b + 1]);
    // 2. the subgradient k·sign(Δ) on that row (overwrite: zero elsewhere).
    if (mode == kOverwrite) std::fill(p.g, p.g + x.numel(), T(0));
    if (mode != kValueOnly)
      for (int64_t j = row * rows.len; j < (row + 1) * rows.len; ++j) {
        const double d = p.c ? static_cast<double>(p.x[j]) - static_cast<double>(p.c[j]) : static_cast<double>(p.x[j]);
        const double s = (d > 0) - (d < 0);
        p.g[j] = static_cast<T>(static_cast<double>(p.g[j]) + p.k * s);
      }
    return top;
  });
}

std::vector<double> values(Kind kind, const std::vector<Operands>& items, double eps) {
  std::vector<double> out(items.size(), 0.0);
  std::vector<Operands> on_device;
  std::vector<size_t> where;
  for (size_t i = 0; i < items.size(); ++i) {
    const Operands& o = items[i];
    if (o.x.device().is_cuda()) {
      on_device.push_back(o);
      where.push_back(i);
      continue;
    }
    switch (kind) {
      case Kind::squared_distance: out[i] = squared_distance(o.x, o.c, o.f, o.out); break;
      case Kind::smooth_l1: out[i] = smooth_l1(o.x, o.c, eps, o.out); break;
      case Kind::group_lasso: out[i] = group_lasso(o.x, o.c, o.f, eps, o.out); break;
      case Kind::mars: out[i] = mars(o.x, o.c, o.out); break;
    }
  }
  if (!on_device.empty()) {
    const std::vector<double> v = cuda::sp_values(kind, on_device, eps);
    for (size_t j = 0; j < where.size(); ++j) out[where[j]] = v[j];
  }
  return out;
}

}  // namespace tether::reg::kernels
