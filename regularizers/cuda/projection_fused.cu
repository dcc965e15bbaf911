// The fused projections of regularizers/cuda/projection_fused.h. As projection.cpp: divisor =
// max(1, norm / radius) (std::max's NaN behaviour: a NaN ratio leaves the tensor alone), and
// where it exceeds 1, w ← T(c + (w − c)·(1 / divisor)) in double (T(w·s) without a centre).
#include "regularizers/cuda/projection_fused.h"

#include "core/cuda/multi_tensor.cuh"
#include "regularizers/cuda/rows.cuh"

namespace tether::reg::cuda {
namespace {

namespace mt = tether::cuda::mt;

struct BallExtra {
  double radius;
  int64_t len;       // row kernels: elements per row
  int64_t row_base;  // row_l1_norms: the tensor's first row in the output
};
using BallPack = mt::Pack<2, BallExtra>;  // w, center (null: 0)
using BallItem = mt::Item<2, BallExtra>;

// std::max(1.0, ratio): 1 unless ratio > 1 (NaN included).
__device__ inline double divisor_of(double norm, double radius) {
  const double ratio = norm / radius;
  return 1.0 < ratio ? ratio : 1.0;
}

template <typename T>
__device__ inline void shrink(T* w, const T* c, int64_t i, double s) {
  if (c) {
    const double ci = static_cast<double>(c[i]);
    w[i] = static_cast<T>(ci + (static_cast<double>(w[i]) - ci) * s);
  } else {
    w[i] = static_cast<T>(static_cast<double>(w[i]) * s);
  }
}

// ‖w − c‖² per chunk of elements.
template <typename T>
struct SquaredNormOp {
  double* partial;
  __device__ void operator()(const BallPack& pack, int t, int64_t chunk) const {
    const T* w = static_cast<const T*>(pack.ptr[0][t]);
    const T* c = static_cast<const T*>(pack.ptr[1][t]);
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    double acc = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      const double d = c ? static_cast<double>(w[i]) - static_cast<double>(c[i]) : static_cast<double>(w[i]);
      acc += d * d;
    }
    acc = mt::block_sum(acc);
    if (threadIdx.x == 0) partial[pack.slot[t] + chunk] = acc;
  }
};

// The tensor's norm from all its partials, then its chunk rescaled where the ball binds.
template <typename T>
struct L2ShrinkOp {
  const double* partial;
  __device__ void operator()(const BallPack& pack, int t, int64_t chunk) const {
    T* w = static_cast<T*>(pack.ptr[0][t]);
    const T* c = static_cast<const T*>(pack.ptr[1][t]);
    const int64_t first = pack.slot[t], chunks = mt::chunks_of(pack.units[t], pack.per_chunk[t]);
    double acc = 0;
    for (int64_t s = threadIdx.x; s < chunks; s += blockDim.x) acc += partial[first + s];
    const double divisor = divisor_of(sqrt(mt::block_sum(acc)), pack.extra[t].radius);
    if (!(divisor > 1.0)) return;
    const double s = 1.0 / divisor;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) shrink(w, c, i, s);
  }
};

// Chunks of rows, a warp per row: ‖Δ_r‖₁, then the row rescaled where its ball binds.
template <typename T>
struct RowShrinkOp {
  __device__ void operator()(const BallPack& pack, int t, int64_t chunk) const {
    T* w = static_cast<T*>(pack.ptr[0][t]);
    const T* c = static_cast<const T*>(pack.ptr[1][t]);
    const int64_t len = pack.extra[t].len;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t r = lo + threadIdx.x / 32; r < hi; r += mt::kWarps) {
      const double divisor = divisor_of(row_abs_diff_sum<T>(w, c, r * len, len), pack.extra[t].radius);
      if (!(divisor > 1.0)) continue;  // the same bits in every lane: the warp agrees
      const double s = 1.0 / divisor;
      for (int64_t j = threadIdx.x % 32; j < len; j += 32) shrink(w, c, r * len + j, s);
    }
  }
};

// Chunks of rows, a warp per row: ‖Δ_r‖₁ into out[row_base + r].
template <typename T>
struct RowNormOp {
  double* out;
  __device__ void operator()(const BallPack& pack, int t, int64_t chunk) const {
    const T* w = static_cast<const T*>(pack.ptr[0][t]);
    const T* c = static_cast<const T*>(pack.ptr[1][t]);
    const int64_t len = pack.extra[t].len;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t r = lo + threadIdx.x / 32; r < hi; r += mt::kWarps) {
      const double l1 = row_abs_diff_sum<T>(w, c, r * len, len);
      if (threadIdx.x % 32 == 0) out[pack.extra[t].row_base + r] = l1;
    }
  }
};

void check(const Ball& b, Device device) {
  TETHER_CHECK(b.w.device() == device && b.w.is_contiguous(), "projection (CUDA): the parameter ", b.w.str(),
               " must be a contiguous tensor on ", device.str());
  TETHER_CHECK(b.w.dtype() == DType::f32 || b.w.dtype() == DType::f64, "projection: f32 or f64 expected, got ",
               dtype_name(b.w.dtype()));
  if (!b.center.defined()) return;
  TETHER_CHECK(b.center.shape() == b.w.shape() && b.center.dtype() == b.w.dtype() && b.center.is_contiguous() &&
                   b.center.device() == device,
               "projection (CUDA): w0 ", b.center.str(), " does not match the parameter ", b.w.str());
}

// Calls body(T{}, items) once per dtype present, items in list order: units = elements (rows
// with `by_rows`), row_base numbering the rows of the tensors of that dtype.
template <typename Body>
void per_dtype(const std::vector<Ball>& balls, bool by_rows, Body body) {
  if (balls.empty()) return;
  const Device device = balls.front().w.device();
  for (const Ball& b : balls) check(b, device);
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<BallItem> items;
    int64_t rows = 0;
    for (const Ball& b : balls) {
      if (b.w.dtype() != dtype) continue;
      const RowShape rs = rows_of(b.w);
      BallItem item;
      item.ptr[0] = b.w.raw_data();
      item.ptr[1] = b.center.defined() ? b.center.raw_data() : nullptr;
      item.units = b.w.numel() == 0 ? 0 : by_rows ? rs.count : b.w.numel();
      if (by_rows) item.per_chunk = rows_per_chunk(rs.len);
      item.extra = {b.radius, rs.len, rows};
      if (item.units > 0) rows += rs.count;
      items.push_back(item);
    }
    if (items.empty()) continue;
    dispatch_float(dtype, "projection", [&](auto tag) { body(tag, items, rows, device); });
  }
}

}  // namespace

void project_l2_balls(const std::vector<Ball>& balls) {
  per_dtype(balls, false, [](auto tag, std::vector<BallItem>& items, int64_t, Device device) {
    using T = decltype(tag);
    cudaStream_t stream = tether::cuda::stream(device.index);
    const Tensor partial = mt::scratch(mt::assign_slots(items), device);
    mt::launch(items, stream, SquaredNormOp<T>{partial.data<double>()}, "project_l2_balls");
    mt::launch(items, stream, L2ShrinkOp<T>{partial.data<double>()}, "project_l2_balls");
  });
}

void project_row_l1_balls(const std::vector<Ball>& balls) {
  per_dtype(balls, true, [](auto tag, std::vector<BallItem>& items, int64_t, Device device) {
    using T = decltype(tag);
    mt::launch(items, tether::cuda::stream(device.index), RowShrinkOp<T>{}, "project_row_l1_balls");
  });
}

std::vector<std::vector<double>> row_l1_norms(const std::vector<Ball>& tensors) {
  std::vector<std::vector<double>> out(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) out[i].resize(static_cast<size_t>(rows_of(tensors[i].w).count), 0.0);
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<Ball> some;
    std::vector<size_t> where;
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].w.dtype() == dtype) some.push_back(tensors[i]), where.push_back(i);
    per_dtype(some, true, [&](auto tag, std::vector<BallItem>& items, int64_t rows, Device device) {
      using T = decltype(tag);
      const Tensor norms = mt::scratch(rows, device);
      mt::launch(items, tether::cuda::stream(device.index), RowNormOp<T>{norms.data<double>()}, "row_l1_norms");
      const std::vector<double> host = norms.to_vector<double>();
      for (size_t j = 0; j < items.size(); ++j)
        if (items[j].units > 0)
          std::copy(host.begin() + items[j].extra.row_base, host.begin() + items[j].extra.row_base + items[j].units,
                    out[where[j]].begin());
    });
  }
  return out;
}

}  // namespace tether::reg::cuda
