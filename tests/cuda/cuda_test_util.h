// Shared helpers of the "cuda" suite: the visible skip on machines without a GPU, the same
// values on both devices (Pair), layouts that make operands and outputs non-contiguous, and
// the CPU-vs-CUDA comparison (NaN matches NaN, an infinity the same infinity).
//
// Every test case starts with TETHER_REQUIRE_GPU("what it checks"): without a CUDA device it
// prints "skipped: no CUDA device (...)" once (doctest MESSAGE, shown with -s, and stderr)
// and returns.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace tether::cudatest {

inline bool have_gpu(const char* what) {
  if (cuda_available()) return true;
  MESSAGE("skipped: no CUDA device (" << what << ")");
  std::cerr << "skipped: no CUDA device (" << what << ")\n";
  return false;
}
#define TETHER_REQUIRE_GPU(what) \
  if (!::tether::cudatest::have_gpu(what)) return

inline Device gpu() { return Device::cuda(0); }
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Tolerances of the CPU-vs-CUDA comparison, relative (see expect_match): float64 agrees to
// rounding, float32 to a few ulps (more where a long sum is reordered: `f32` per test).
inline double tol_of(DType dtype, double f32 = 1e-5) { return dtype == DType::f64 ? 1e-12 : f32; }

// Sets the TF32 mode for a scope and restores the previous one.
class Tf32Scope {
 public:
  explicit Tf32Scope(const std::string& mode) : saved_(tf32_mode()) { set_tf32_mode(mode); }
  ~Tf32Scope() { set_tf32_mode(saved_); }

 private:
  std::string saved_;
};

// Seeded shapes and sizes for the random draws of each test.
class Draw {
 public:
  explicit Draw(uint64_t seed) : gen_(seed) {}
  int64_t operator()(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen_); }
  bool coin() { return (*this)(0, 1) == 1; }
  Shape shape(int rank, int64_t lo, int64_t hi) {
    Shape s(rank);
    for (int64_t& d : s) d = (*this)(lo, hi);
    return s;
  }

 private:
  std::mt19937_64 gen_;
};

// One value set on both devices: `cpu` and its copy (or the same view of a copied buffer) on
// the GPU. Written {gpu result, cpu result}, as expect_match's arguments.
struct Pair {
  Tensor gpu, cpu;
  const Tensor& on(bool use_gpu) const { return use_gpu ? gpu : cpu; }
};
inline Pair pair_of(const Tensor& cpu) { return {cpu.to(gpu()), cpu}; }
template <typename F>
Pair map(const Pair& p, F&& f) {
  Pair r;
  r.cpu = f(p.cpu);
  r.gpu = f(p.gpu);
  return r;
}
inline Pair randn2(const Shape& shape, uint64_t seed, DType dtype) { return pair_of(testing::randn(shape, seed, dtype)); }

// Layouts of an operand or output with given values: contiguous, the last two dims stored
// transposed, every other element at an odd offset, channels last (4-D only).
enum class Layout { contiguous, transposed, every_other, channels_last };
inline std::vector<Layout> layouts_for(int dim) {
  std::vector<Layout> v{Layout::contiguous, Layout::every_other};
  if (dim >= 2) v.push_back(Layout::transposed);
  if (dim == 4) v.push_back(Layout::channels_last);
  return v;
}
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::transposed: return "transposed";
    case Layout::every_other: return "every other element";
    case Layout::channels_last: return "channels last";
  }
  return "?";
}

// The buffer (on both devices) holding a view of `shape` in layout `l`, and that view. The
// buffer's elements outside the view are `fill`; compare buffers to see they stay untouched.
struct Laid {
  Pair buffer, view;
};
inline Laid lay_out(const Tensor& values, Layout l, double fill = 0.0) {
  const Shape& s = values.shape();
  Shape bs = s;
  std::function<Tensor(const Tensor&)> view = [](const Tensor& b) { return b; };
  switch (l) {
    case Layout::contiguous: break;
    case Layout::transposed:
      std::swap(bs[bs.size() - 1], bs[bs.size() - 2]);
      view = [](const Tensor& b) { return ops::transpose(b, -1, -2); };
      break;
    case Layout::every_other:
      bs.push_back(2);
      view = [](const Tensor& b) { return ops::select(b, -1, 1); };
      break;
    case Layout::channels_last:
      bs = {s[0], s[2], s[3], s[1]};
      view = [](const Tensor& b) { return ops::permute(b, {0, 3, 1, 2}); };
      break;
  }
  Tensor buf = Tensor::full(bs, fill, values.dtype());
  view(buf).copy_(values);
  Laid r;
  r.buffer = pair_of(buf);
  r.view = map(r.buffer, view);
  return r;
}
inline Pair laid(const Tensor& values, Layout l) { return lay_out(values, l).view; }

// Worst |got - want| / (rtol |want| + atol) over the elements; NaN matches NaN, an infinity
// the same infinity; `where` receives the worst element. 0 when identical.
inline double mismatch(const Tensor& got, const Tensor& want, double rtol, double atol, std::string* where) {
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double r = 0;
    if (std::isnan(w[i]) || std::isnan(g[i])) r = std::isnan(w[i]) && std::isnan(g[i]) ? 0 : kInf;
    else if (std::isinf(w[i]) || std::isinf(g[i])) r = g[i] == w[i] ? 0 : kInf;
    else if (g[i] != w[i]) r = std::abs(g[i] - w[i]) / (rtol * std::abs(w[i]) + atol);
    if (r > worst) {
      worst = std::isnan(r) ? kInf : r;
      std::ostringstream os;
      os.precision(17);
      os << "element " << i << ": cuda " << g[i] << " vs cpu " << w[i];
      *where = os.str();
    }
  }
  return worst;
}

// The largest finite |value| (1 when there is none, or all are 0): the scale of absolute
// tolerances, so an element that cancels to near 0 is judged against its neighbours' size.
inline double scale_of(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>())
    if (std::isfinite(v)) m = std::max(m, std::abs(v));
  return m > 0 ? m : 1.0;
}

// Checks a CUDA result against the CPU one: same shape and dtype, the CUDA one on the GPU,
// values within tol relative to each element plus tol x the largest |cpu value|. tol = 0:
// identical values.
inline void expect_match(const std::string& what, const Tensor& cuda_result, const Tensor& cpu_result, double tol,
                         double atol = -1) {
  INFO(what << ": cuda " << cuda_result.str() << ", cpu " << cpu_result.str());
  CHECK(cuda_result.device().is_cuda());
  CHECK(cuda_result.dtype() == cpu_result.dtype());
  REQUIRE(cuda_result.shape() == cpu_result.shape());
  if (atol < 0) atol = tol * scale_of(cpu_result);
  std::string where;
  const double worst = mismatch(cuda_result, cpu_result, tol, atol, &where);
  INFO(what << ": worst " << where << " (" << worst << " x the tolerance, rtol " << tol << ", atol " << atol << ")");
  CHECK(worst <= 1.0);
}
inline void expect_match(const std::string& what, const Pair& results, double tol, double atol = -1) {
  expect_match(what, results.gpu, results.cpu, tol, atol);
}

// A kernel writing into a caller's tensor (the backward kernels), on both devices: run(gpu,
// out, accumulate). Checked overwriting (out starts as NaN) and accumulating (out starts as
// random values), into a contiguous output and into each strided layout (whose buffer
// elements outside the view must stay untouched).
inline void check_into(const std::string& what, const Shape& shape, DType dtype, uint64_t seed, double tol,
                       const std::function<void(bool, const Tensor&, bool)>& run) {
  for (Layout l : layouts_for(static_cast<int>(shape.size())))
    for (bool accumulate : {false, true}) {
      const Tensor init = accumulate ? testing::randn(shape, seed, dtype) : Tensor::full(shape, kNaN, dtype);
      Laid out = lay_out(init, l, /*fill=*/-7.0);
      run(false, out.view.cpu, accumulate);
      run(true, out.view.gpu, accumulate);
      expect_match(what + (accumulate ? " (accumulate, " : " (overwrite, ") + layout_name(l) + " output)",
                   out.buffer, tol);
    }
}

}  // namespace tether::cudatest
