// The fused penalty kernels of regularizers/cuda/sp_fused.h. Formulas, precisions and gradient
// writes are sp_kernels.cpp's (Δ and F in double, smooth L1 in the tensor's type, sums in double):
//   squared_distance, smooth_l1  one elementwise launch: value partial per chunk + gradient
//   group_lasso                  rows: q_r = Σ F Δ², the value partial Σ √p q_r / (n_r + ε) per
//                                chunk of rows and √p / n_r per row; then, with a gradient, an
//                                elementwise launch writing √p F Δ / n_r
//   mars                         rows: ‖Δ_r‖₁ per row; per tensor the first maximising row (one
//                                block per tensor, ties to the lowest row, NaN rows skipped as
//                                the CPU's strict `>` skips them); then k·sign(Δ) on that row
//                                (overwrite: 0 elsewhere)
// c, F and the gradient are optional per tensor (null pointers), so each kind is one launch per
// dtype over the whole list.
#include "regularizers/cuda/sp_fused.h"

#include <cmath>

#include "core/cuda/multi_tensor.cuh"
#include "regularizers/cuda/rows.cuh"

namespace tether::reg::cuda {
namespace {

namespace mt = tether::cuda::mt;
using kernels::Kind;
using kernels::Operands;

struct SpExtra {
  double k;            // the gradient's factor
  int64_t rows, len;   // SPEC 1 rows
  int64_t row_base;    // the tensor's first row in the call's row buffers
  int32_t overwrite;   // g = k·∂V/∂x instead of g += k·∂V/∂x
};
using SpPack = mt::Pack<4, SpExtra>;  // x, c (null: 0), F (null: 1), g (null: value only)
using SpItem = mt::Item<4, SpExtra>;

__device__ inline float root(float v) { return sqrtf(v); }
__device__ inline double root(double v) { return sqrt(v); }

// One tensor's operands inside a kernel.
template <typename T>
struct View {
  const T* x;
  const T* c;
  const T* f;
  T* g;
  __device__ View(const SpPack& p, int t)
      : x(static_cast<const T*>(p.ptr[0][t])),
        c(static_cast<const T*>(p.ptr[1][t])),
        f(static_cast<const T*>(p.ptr[2][t])),
        g(static_cast<T*>(p.ptr[3][t])) {}
  template <typename C>
  __device__ C delta(int64_t i) const {
    return c ? static_cast<C>(x[i]) - static_cast<C>(c[i]) : static_cast<C>(x[i]);
  }
  template <typename C>
  __device__ C weight(int64_t i) const {
    return f ? static_cast<C>(f[i]) : C(1);
  }
  // g_i (+)= k·dv, as sp_kernels.cpp's sweep.
  __device__ void write(int64_t i, double k, bool overwrite, double dv) const {
    g[i] = overwrite ? static_cast<T>(k * dv) : static_cast<T>(static_cast<double>(g[i]) + k * dv);
  }
};

// ---- elementwise kinds ----------------------------------------------------------------------------

struct SquaredDistance {  // V = F Δ², ∂V/∂x = 2 F Δ
  template <typename C>
  __device__ C operator()(C d, C fw, C& dv) const {
    const C fd = fw * d;
    dv = C(2) * fd;
    return fd * d;
  }
};

struct SmoothL1 {  // V = Δ² / (s + ε) (= s − ε), ∂V/∂x = Δ / s, s = √(Δ² + ε²)
  double eps;
  template <typename C>
  __device__ C operator()(C d, C, C& dv) const {
    const C e = static_cast<C>(eps), s = root(d * d + e * e);
    dv = d / s;
    return d * d / (s + e);
  }
};

// C: the precision of Δ and of the element's formula (double, or T for smooth L1).
template <typename T, typename C, typename Elem>
struct ElementwiseOp {
  Elem elem;
  double* partial;
  __device__ void operator()(const SpPack& pack, int t, int64_t chunk) const {
    const View<T> v(pack, t);
    const double k = pack.extra[t].k;
    const bool overwrite = pack.extra[t].overwrite != 0;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    double acc = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      C dv = 0;
      acc += static_cast<double>(elem(v.template delta<C>(i), v.template weight<C>(i), dv));
      if (v.g) v.write(i, k, overwrite, static_cast<double>(dv));
    }
    acc = mt::block_sum(acc);
    if (threadIdx.x == 0) partial[pack.slot[t] + chunk] = acc;
  }
};

// ---- group lasso ------------------------------------------------------------------------------

// Chunks of rows, a warp per row: q_r, the chunk's value partial, and √p / n_r per row.
template <typename T>
struct GroupLassoRowsOp {
  double eps;
  double* row_scale;  // null: value only
  double* partial;
  __device__ void operator()(const SpPack& pack, int t, int64_t chunk) const {
    const View<T> v(pack, t);
    const int64_t len = pack.extra[t].len, base = pack.extra[t].row_base;
    const double sqrt_p = sqrt(static_cast<double>(len)), eps2 = eps * eps;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    double value = 0;
    for (int64_t r = lo + threadIdx.x / 32; r < hi; r += mt::kWarps) {
      const int64_t at = r * len;
      const double q = warp_row_sum(len, [&](int64_t j) {
        const double d = v.template delta<double>(at + j);
        return v.template weight<double>(at + j) * d * d;
      });
      const double n = sqrt(q + eps2);
      value += sqrt_p * (q / (n + eps));  // = √p (n − ε) without cancellation
      if (row_scale && threadIdx.x % 32 == 0) row_scale[base + r] = sqrt_p / n;
    }
    const double total = mt::block_sum(threadIdx.x % 32 == 0 ? value : 0.0);
    if (threadIdx.x == 0) partial[pack.slot[t] + chunk] = total;
  }
};

// Elementwise: k·√p F Δ / n_r into g.
template <typename T>
struct GroupLassoGradOp {
  const double* row_scale;
  __device__ void operator()(const SpPack& pack, int t, int64_t chunk) const {
    const View<T> v(pack, t);
    const double k = pack.extra[t].k;
    const bool overwrite = pack.extra[t].overwrite != 0;
    const int64_t len = pack.extra[t].len, base = pack.extra[t].row_base;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      const double scale = row_scale[base + i / len];
      v.write(i, k, overwrite, scale * v.template weight<double>(i) * v.template delta<double>(i));
    }
  }
};

// ---- mars -----------------------------------------------------------------------------------------

// Chunks of rows, a warp per row: ‖Δ_r‖₁.
template <typename T>
struct RowL1Op {
  double* row_l1;
  __device__ void operator()(const SpPack& pack, int t, int64_t chunk) const {
    const View<T> v(pack, t);
    const int64_t len = pack.extra[t].len, base = pack.extra[t].row_base;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t r = lo + threadIdx.x / 32; r < hi; r += mt::kWarps) {
      const double l1 = row_abs_diff_sum(v.x, v.c, r * len, len);
      if (threadIdx.x % 32 == 0) row_l1[base + r] = l1;
    }
  }
};

// One block per tensor: the largest row norm and its first row (CPU: top = −1, row 0, strict `>`).
struct FirstMaxOp {
  const double* row_l1;
  double* best_value;  // at the tensor's slot
  int64_t* best_row;   // at the tensor's row_base
  __device__ void operator()(const SpPack& pack, int t, int64_t) const {
    __shared__ double top[tether::cuda::kThreads];
    __shared__ int64_t at[tether::cuda::kThreads];
    const int64_t rows = pack.extra[t].rows, base = pack.extra[t].row_base;
    double v = -1;
    int64_t row = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
      if (row_l1[base + r] > v) v = row_l1[base + r], row = r;
    top[threadIdx.x] = v;
    at[threadIdx.x] = row;
    __syncthreads();
    for (int s = tether::cuda::kThreads / 2; s > 0; s /= 2) {
      if (threadIdx.x < s) {
        const double ov = top[threadIdx.x + s];
        const int64_t orow = at[threadIdx.x + s];
        if (ov > top[threadIdx.x] || (ov == top[threadIdx.x] && orow < at[threadIdx.x]))
          top[threadIdx.x] = ov, at[threadIdx.x] = orow;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      best_value[pack.slot[t]] = top[0];
      best_row[base] = at[0];
    }
  }
};

// k·sign(Δ) on the chosen row. Accumulate: the units are that row's elements; overwrite: all
// elements, 0 off the row (the CPU fills with 0, then adds k·sign(Δ) to 0 on the row).
template <typename T>
struct MarsGradOp {
  const int64_t* best_row;
  __device__ void operator()(const SpPack& pack, int t, int64_t chunk) const {
    const View<T> v(pack, t);
    const double k = pack.extra[t].k;
    const bool overwrite = pack.extra[t].overwrite != 0;
    const int64_t len = pack.extra[t].len, row = best_row[pack.extra[t].row_base];
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t u = lo + threadIdx.x; u < hi; u += blockDim.x) {
      const int64_t i = overwrite ? u : row * len + u;
      if (overwrite && i / len != row) {
        v.g[i] = T(0);
        continue;
      }
      const double d = v.template delta<double>(i);
      const double s = (d > 0) - (d < 0);
      const double old = overwrite ? 0.0 : static_cast<double>(v.g[i]);
      v.g[i] = static_cast<T>(old + k * s);
    }
  }
};

// ---- host -----------------------------------------------------------------------------------------

void check_operand(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  TETHER_CHECK(t.shape() == x.shape() && t.dtype() == x.dtype() && t.is_contiguous() && t.device() == x.device(),
               "penalty kernel: ", what, " ", t.str(), " does not match the parameter ", x.str(),
               " (same shape, dtype and device, contiguous)");
}

void check(const Operands& o, bool uses_f, Device device) {
  TETHER_CHECK(o.x.device() == device && o.x.is_contiguous(), "penalty kernel: the parameter ", o.x.str(),
               " must be a contiguous tensor on ", device.str());
  TETHER_CHECK(o.x.dtype() == DType::f32 || o.x.dtype() == DType::f64, "penalty kernel: f32 or f64 expected, got ",
               dtype_name(o.x.dtype()));
  check_operand(o.x, o.c, "reference");
  if (uses_f) check_operand(o.x, o.f, "Fisher weights");
  check_operand(o.x, o.out.g, "gradient buffer");
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::squared_distance: return "sp_squared_distance";
    case Kind::smooth_l1: return "sp_smooth_l1";
    case Kind::group_lasso: return "sp_group_lasso";
    case Kind::mars: return "sp_mars";
  }
  return "sp";
}

// The values of `kind` on the tensors `which` of `all` (all of dtype T), in that order.
template <typename T>
std::vector<double> run(Kind kind, const std::vector<Operands>& all, const std::vector<size_t>& which, double eps,
                        Device device) {
  const bool uses_f = kind == Kind::squared_distance || kind == Kind::group_lasso;
  cudaStream_t stream = tether::cuda::stream(device.index);
  const char* name = kind_name(kind);
  std::vector<SpItem> elems;  // one item per tensor, units = elements
  int64_t total_rows = 0;
  bool any_grad = false;
  for (size_t i : which) {
    const Operands& o = all[i];
    SpItem item;
    item.ptr[0] = o.x.raw_data();
    item.ptr[1] = o.c.defined() ? o.c.raw_data() : nullptr;
    item.ptr[2] = uses_f && o.f.defined() ? o.f.raw_data() : nullptr;
    item.ptr[3] = o.out.g.defined() ? o.out.g.raw_data() : nullptr;
    item.units = o.x.numel();
    const RowShape rs = rows_of(o.x);
    item.extra = {o.out.k, rs.count, rs.len, total_rows, o.out.overwrite ? 1 : 0};
    if (item.units > 0) total_rows += rs.count;
    any_grad |= o.out.g.defined();
    elems.push_back(item);
  }

  if (kind == Kind::squared_distance || kind == Kind::smooth_l1) {
    const Tensor partial = mt::scratch(mt::assign_slots(elems), device);
    double* out = partial.data<double>();
    if (kind == Kind::squared_distance)
      mt::launch(elems, stream, ElementwiseOp<T, double, SquaredDistance>{{}, out}, name);
    else
      mt::launch(elems, stream, ElementwiseOp<T, T, SmoothL1>{{eps}, out}, name);
    return mt::sum_slots(partial.to_vector<double>(), elems);
  }

  // Row kinds: one item per tensor with units = rows, a block per chunk of rows.
  std::vector<SpItem> rows = elems;
  for (SpItem& item : rows) {
    if (item.units > 0) item.units = item.extra.rows;
    item.per_chunk = rows_per_chunk(item.extra.len);
  }
  // The gradient's items: only tensors with a buffer.
  std::vector<SpItem> grads = elems;
  for (SpItem& item : grads)
    if (!item.ptr[3]) item.units = 0;

  if (kind == Kind::group_lasso) {
    const Tensor partial = mt::scratch(mt::assign_slots(rows), device);
    const Tensor row_scale = mt::scratch(any_grad ? total_rows : 0, device);
    mt::launch(rows, stream,
               GroupLassoRowsOp<T>{eps, any_grad ? row_scale.data<double>() : nullptr, partial.data<double>()}, name);
    if (any_grad) mt::launch(grads, stream, GroupLassoGradOp<T>{row_scale.data<double>()}, name);
    return mt::sum_slots(partial.to_vector<double>(), rows);
  }

  // mars
  const Tensor row_l1 = mt::scratch(total_rows, device);
  mt::launch(rows, stream, RowL1Op<T>{row_l1.data<double>()}, name);
  std::vector<SpItem> tops = elems;  // one block per non-empty tensor
  for (SpItem& item : tops) {
    item.units = item.units > 0 ? 1 : 0;
    item.per_chunk = 1;
  }
  const Tensor best_value = mt::scratch(mt::assign_slots(tops), device);
  const Tensor best_row = Tensor::empty({total_rows > 0 ? total_rows : 1}, DType::i64, device);
  mt::launch(tops, stream, FirstMaxOp{row_l1.data<double>(), best_value.data<double>(), best_row.data<int64_t>()},
             name);
  if (any_grad) {
    for (SpItem& item : grads)
      if (item.units > 0 && !item.extra.overwrite) item.units = item.extra.len;  // the row only
    mt::launch(grads, stream, MarsGradOp<T>{best_row.data<int64_t>()}, name);
  }
  return mt::sum_slots(best_value.to_vector<double>(), tops);
}

}  // namespace

std::vector<double> sp_values(Kind kind, const std::vector<Operands>& items, double eps) {
  std::vector<double> values(items.size(), 0.0);
  if (items.empty()) return values;
  const Device device = items.front().x.device();
  TETHER_CHECK(device.is_cuda(), "penalty kernel (CUDA): the parameter ", items.front().x.str(),
               " is not on a CUDA device");
  const bool uses_f = kind == Kind::squared_distance || kind == Kind::group_lasso;
  for (const Operands& o : items) check(o, uses_f, device);
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<size_t> which;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].x.dtype() == dtype) which.push_back(i);
    if (which.empty()) continue;
    const std::vector<double> v = dispatch_float(dtype, "penalty kernel", [&](auto tag) {
      return run<decltype(tag)>(kind, items, which, eps, device);
    });
    for (size_t j = 0; j < which.size(); ++j) values[which[j]] = v[j];
  }
  return values;
}

}  // namespace tether::reg::cuda
