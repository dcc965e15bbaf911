// SPEC 3 projections (regularizers/projection.h). Each tensor is visited in place: one pass to
// measure (the norm, or every row's L1 norm), and a second over the tensor or row only where the
// constraint binds. Sums are accumulated in double, in an order fixed by the tensor's shape (the
// Frobenius norm with sp_kernels' chunked kernel, row norms one row per thread), so any thread
// count gives identical results; OpenMP splits large tensors. CUDA tensors go to the fused
// multi-tensor kernels (regularizers/cuda/projection_fused.h): the hook projects all of them in
// one or two launches, and the ratios measure all of them with one copy back.
#include "regularizers/projection.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/check.h"
#include "regularizers/cuda/projection_fused.h"
#include "regularizers/sp_kernels.h"

namespace tether::reg {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // elements (or row elements) before OpenMP helps

enum class Kind { l2, mars };

struct Target {
  Tensor w;
  Tensor center;  // w0 for S; undefined for S̄ (the ball around 0)
  double radius;
};

Kind kind_of(const std::string& project) {
  if (project == "l2-pgm") return Kind::l2;
  if (project == "mars-pgm") return Kind::mars;
  std::string known;
  for (const auto& n : projection_names()) known += (known.empty() ? "" : ", ") + n;
  TETHER_FAIL("--project: unknown projection '", project, "' (known: ", known, ")");
}

void check_radius(double r, const char* flag) {
  TETHER_CHECK(r > 0, flag, " must be > 0 (inf disables the constraint), got ", r);  // NaN fails too
}

void check_tensor(const Tensor& w, const Tensor& center, const std::string& name) {
  TETHER_CHECK(w.is_contiguous(), "projection of '", name, "': the parameter is not contiguous");
  TETHER_CHECK(w.dtype() == DType::f32 || w.dtype() == DType::f64, "projection of '", name,
               "': f32 or f64 expected, got ", dtype_name(w.dtype()));
  if (!center.defined()) return;
  TETHER_CHECK(center.shape() == w.shape() && center.dtype() == w.dtype() && center.is_contiguous() &&
                   center.device() == w.device(),
               "projection of '", name, "': w0 does not match the parameter's shape/dtype/device");
}

// The constrained tensors: S with its w0 when γ is finite, S̄ when γ_V is finite.
std::vector<Target> targets(const ProjectionOptions& opts, const ParamSets& sets) {
  std::vector<Target> out;
  if (std::isfinite(opts.gamma))
    for (const auto& [name, w] : sets.inherited) {
      auto it = sets.w0.find(name);
      TETHER_CHECK(it != sets.w0.end(), "projection: no w0 for '", name, "'");
      check_tensor(w, it->second, name);
      out.push_back({w, it->second, opts.gamma});
    }
  if (std::isfinite(opts.gamma_head))
    for (const auto& [name, v] : sets.head) {
      check_tensor(v, Tensor(), name);
      out.push_back({v, Tensor(), opts.gamma_head});
    }
  return out;
}

// SPEC 1 rows: [d0, rest]; a 1-D tensor is [C, 1]; a 0-d tensor one row of one.
int64_t rows_of(const Tensor& w) { return w.dim() == 0 ? 1 : w.shape()[0]; }

// ‖w − c‖²_F: the closed-form penalty kernel (one pass, chunked, the same for any thread count).
double sum_sq_diff(const Tensor& w, const Tensor& c) { return kernels::squared_distance(w, c, Tensor()); }

// Σ |w − c| over one row, in 8 independent running sums (not one latency-bound chain).
template <typename T>
double abs_diff_sum(const T* w, const T* c, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, tail = 0;
  auto term = [&](int64_t i) {
    return std::abs(c ? static_cast<double>(w[i]) - static_cast<double>(c[i]) : static_cast<double>(w[i]));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += term(i + j);
  for (; i < n; ++i) tail += term(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

// w ← c + (w − c)·s (c = 0 when null), the difference taken in double.
template <typename T>
void shrink(T* w, const T* c, int64_t n, double s) {
  if (c) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const double ci = static_cast<double>(c[i]);
      w[i] = static_cast<T>(ci + (static_cast<double>(w[i]) - ci) * s);
    }
  } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) w[i] = static_cast<T>(static_cast<double>(w[i]) * s);
  }
}

template <typename T>
const T* center_data(const Tensor& center) {
  return center.defined() ? center.data<T>() : nullptr;
}

template <typename T>
void l2_project(const Tensor& wt, const Tensor& center, double radius) {
  T* w = wt.data<T>();
  const T* c = center_data<T>(center);
  const int64_t n = wt.numel();
  const double norm = std::sqrt(sum_sq_diff(wt, center));
  const double divisor = std::max(1.0, norm / radius);  // SPEC 3: ΔW / max(1, ‖ΔW‖_F / γ)
  if (divisor > 1.0) shrink(w, c, n, 1.0 / divisor);
}

template <typename T>
void rows_project(const Tensor& wt, const Tensor& center, double radius) {
  T* w = wt.data<T>();
  const T* c = center_data<T>(center);
  const int64_t rows = rows_of(wt), len = rows ? wt.numel() / rows : 0;
#pragma omp parallel for schedule(static) if (wt.numel() >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    T* wr = w + r * len;
    const T* cr = c ? c + r * len : nullptr;
    const double divisor = std::max(1.0, abs_diff_sum(wr, cr, len) / radius);  // SPEC 3: Δ_r / max(1, ‖Δ_r‖₁ / γ)
    if (divisor > 1.0) {
      const double s = 1.0 / divisor;
      for (int64_t i = 0; i < len; ++i) {
        const double ci = cr ? static_cast<double>(cr[i]) : 0.0;
        wr[i] = static_cast<T>(ci + (static_cast<double>(wr[i]) - ci) * s);
      }
    }
  }
}

template <typename T>
double rows_ratio(const Tensor& wt, const Tensor& center, double radius) {
  const T* w = wt.data<T>();
  const T* c = center_data<T>(center);
  const int64_t rows = rows_of(wt), len = rows ? wt.numel() / rows : 0;
  double worst = 0;
#pragma omp parallel for schedule(static) reduction(max : worst) if (wt.numel() >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) worst = std::max(worst, abs_diff_sum(w + r * len, c ? c + r * len : nullptr, len));
  return worst / radius;
}

// max(0, largest row norm), as rows_ratio reduces it.
double largest(const std::vector<double>& norms) {
  double worst = 0;
  for (double n : norms) worst = std::max(worst, n);
  return worst;
}

// Every target's constraint ratio, in order: CPU tensors one by one, CUDA tensors in one fused
// measurement with one copy back.
std::vector<double> ratios(Kind kind, const std::vector<Target>& list) {
  std::vector<double> out(list.size());
  std::vector<size_t> on_device;
  for (size_t i = 0; i < list.size(); ++i) {
    const Target& t = list[i];
    if (t.w.device().is_cuda()) on_device.push_back(i);
    else out[i] = kind == Kind::l2 ? l2_ratio(t.w, t.center, t.radius) : row_l1_ratio(t.w, t.center, t.radius);
  }
  if (on_device.empty()) return out;
  if (kind == Kind::l2) {
    std::vector<kernels::Operands> items;
    for (size_t i : on_device) items.push_back({list[i].w, list[i].center, Tensor(), {}});
    const std::vector<double> squares = kernels::values(kernels::Kind::squared_distance, items);
    for (size_t j = 0; j < on_device.size(); ++j)
      out[on_device[j]] = std::sqrt(squares[j]) / list[on_device[j]].radius;
  } else {
    std::vector<cuda::Ball> balls;
    for (size_t i : on_device) balls.push_back({list[i].w, list[i].center, list[i].radius});
    const std::vector<std::vector<double>> norms = cuda::row_l1_norms(balls);
    for (size_t j = 0; j < on_device.size(); ++j) out[on_device[j]] = largest(norms[j]) / list[on_device[j]].radius;
  }
  return out;
}

template <typename F>
auto dispatch(const Tensor& w, F&& f) {
  if (w.dtype() == DType::f64) return f(double{});
  TETHER_CHECK(w.dtype() == DType::f32, "projection: f32 or f64 expected, got ", dtype_name(w.dtype()));
  return f(float{});
}

}  // namespace

const std::vector<std::string>& projection_names() {
  static const std::vector<std::string> names{"none", "l2-pgm", "mars-pgm"};
  return names;
}

void project_l2_ball(const Tensor& w, const Tensor& center, double radius) {
  if (!std::isfinite(radius)) return;
  check_tensor(w, center, "tensor");
  if (w.device().is_cuda()) return cuda::project_l2_balls({{w, center, radius}});
  dispatch(w, [&](auto t) { l2_project<decltype(t)>(w, center, radius); });
}

void project_row_l1_balls(const Tensor& w, const Tensor& center, double radius) {
  if (!std::isfinite(radius)) return;
  check_tensor(w, center, "tensor");
  if (w.device().is_cuda()) return cuda::project_row_l1_balls({{w, center, radius}});
  dispatch(w, [&](auto t) { rows_project<decltype(t)>(w, center, radius); });
}

double l2_ratio(const Tensor& w, const Tensor& center, double radius) {
  check_tensor(w, center, "tensor");
  return std::sqrt(sum_sq_diff(w, center)) / radius;
}

double row_l1_ratio(const Tensor& w, const Tensor& center, double radius) {
  check_tensor(w, center, "tensor");
  if (w.device().is_cuda()) return largest(row_l1_norms(w, center)) / radius;
  return dispatch(w, [&](auto t) { return rows_ratio<decltype(t)>(w, center, radius); });
}

std::vector<double> row_l1_norms(const Tensor& w, const Tensor& center) {
  check_tensor(w, center, "tensor");
  if (w.device().is_cuda()) return cuda::row_l1_norms({{w, center, 1.0}})[0];
  return dispatch(w, [&](auto e) {
    using T = decltype(e);
    const T* wd = w.data<T>();
    const T* c = center_data<T>(center);
    const int64_t rows = rows_of(w), len = rows ? w.numel() / rows : 0;
    std::vector<double> norms(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) norms[static_cast<size_t>(r)] = abs_diff_sum(wd + r * len, c ? c + r * len : nullptr, len);
    return norms;
  });
}

std::optional<optim::Hook> make_projection(const ProjectionOptions& opts, const ParamSets& sets) {
  if (opts.project == "none") return std::nullopt;
  const Kind kind = kind_of(opts.project);
  check_radius(opts.gamma, "--gamma");
  check_radius(opts.gamma_head, "--gamma-head");
  // The lists are built (and checked) once; each step only walks them. CUDA tensors are
  // projected together, in one fused call.
  auto list = std::make_shared<std::vector<Target>>();
  auto on_device = std::make_shared<std::vector<cuda::Ball>>();
  for (const Target& t : targets(opts, sets)) {
    if (t.w.device().is_cuda()) on_device->push_back({t.w, t.center, t.radius});
    else list->push_back(t);
  }
  return optim::Hook{opts.project, [kind, list, on_device] {
                       for (const Target& t : *list)
                         dispatch(t.w, [&](auto e) {
                           using T = decltype(e);
                           if (kind == Kind::l2) l2_project<T>(t.w, t.center, t.radius);
                           else rows_project<T>(t.w, t.center, t.radius);
                         });
                       if (on_device->empty()) return;
                       if (kind == Kind::l2) cuda::project_l2_balls(*on_device);
                       else cuda::project_row_l1_balls(*on_device);
                     }};
}

double max_constraint_ratio(const ProjectionOptions& opts, const ParamSets& sets) {
  if (opts.project == "none") return 0;
  const Kind kind = kind_of(opts.project);
  double worst = 0;
  for (double ratio : ratios(kind, targets(opts, sets))) worst = std::max(worst, ratio);
  return worst;
}

}  // namespace tether::reg
