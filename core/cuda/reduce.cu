// Reductions on CUDA (core/cpu/reduce.cpp on the GPU): sum, amax, argmax over dims and
// the whole-tensor scalars sum_all, dot, norm (mean is a scaled sum, in core/ops.cpp).
//
// Every reduction is made of passes over a contiguous [outer, len, inner] layout,
// out[o, i] = reduce over r of x[o, r, i]:
//  - inner == 1 (the reduced elements are adjacent): threadIdx.x runs along r, so a warp reads
//    consecutive elements; short rows share a block (threadIdx.y picks the row).
//  - inner > 1: threadIdx.x runs along i (adjacent outputs, coalesced loads), threadIdx.y
//    splits r.
// When few outputs have long reductions, r is also cut into gridDim.y splits whose partial
// results a second pass over [outputs, splits] combines. Dims reduced in several
// non-adjacent groups (N, H and W of NCHW for a bias gradient) take one pass per group,
// innermost first, through intermediates of the accumulator type; non-contiguous inputs are
// made contiguous first, as the CPU does.
//
// Deterministic: the split of the work depends only on the shape, and partial results combine
// in fixed trees. Sums accumulate in double (f32 too), as the CPU does; sum_all, dot and norm
// return that double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/cuda/common.h"
#include "core/cuda/kernels.h"
#include "core/shapes.h"

namespace tether::cuda {

namespace {

// ---- reducers: an accumulator type, its identity, an associative combine, the final value ----
template <typename Out>
struct SumRed {
  using acc_t = double;
  using out_t = Out;
  __device__ double identity() const { return 0.0; }
  __device__ double combine(double a, double b) const { return a + b; }
  __device__ Out finish(double a) const { return static_cast<Out>(a); }
};

// NaN propagates, as on the CPU (and in PyTorch).
template <typename T>
struct MaxRed {
  using acc_t = T;
  using out_t = T;
  __device__ T identity() const { return static_cast<T>(-INFINITY); }
  __device__ T combine(T a, T b) const { return b > a || std::isnan(b) ? b : a; }
  __device__ T finish(T a) const { return a; }
};

// max |x| for norm(inf); like the CPU's std::max(m, |x|) from m = 0 it skips NaN.
struct MaxAbsRed {
  using acc_t = double;
  using out_t = double;
  __device__ double identity() const { return 0.0; }
  __device__ double combine(double a, double b) const { return a < b ? b : a; }
  __device__ double finish(double a) const { return a; }
};

template <typename T>
struct ArgAcc {
  T value;
  int64_t index;  // -1: no element yet
};

// The CPU's scan keeps the first NaN, else the first maximum: a total order on (value, index),
// so any combining tree finds the same element.
template <typename T>
struct ArgMaxRed {
  using acc_t = ArgAcc<T>;
  using out_t = int64_t;
  __device__ acc_t identity() const { return {T(0), -1}; }
  __device__ acc_t combine(const acc_t& a, const acc_t& b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    const bool a_nan = std::isnan(a.value), b_nan = std::isnan(b.value);
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.value != b.value) return a.value > b.value ? a : b;
    return a.index < b.index ? a : b;
  }
  __device__ int64_t finish(const acc_t& a) const { return a.index; }
};

// ---- sources: the accumulator value of element e (flat offset), at position r along len ----------
template <typename In, typename Acc>
struct Load {
  const In* x;
  __device__ Acc operator()(int64_t e, int64_t) const { return static_cast<Acc>(x[e]); }
};
template <typename T>
struct ArgLoad {
  const T* x;
  __device__ ArgAcc<T> operator()(int64_t e, int64_t r) const { return {x[e], r}; }
};
template <typename T>
struct DotLoad {
  const T* a;
  const T* b;
  __device__ double operator()(int64_t e, int64_t) const { return static_cast<double>(a[e]) * b[e]; }
};
template <typename T>
struct AbsLoad {
  const T* x;
  __device__ double operator()(int64_t e, int64_t) const { return std::abs(static_cast<double>(x[e])); }
};
template <typename T>
struct SquareLoad {
  const T* x;
  __device__ double operator()(int64_t e, int64_t) const { return static_cast<double>(x[e]) * x[e]; }
};
template <typename T>
struct PowAbsLoad {
  const T* x;
  double p;
  __device__ double operator()(int64_t e, int64_t) const { return std::pow(std::abs(static_cast<double>(x[e])), p); }
};

// ---- kernels ------------------------------------------------------------------------------------
// Combines the values of the `count` (a power of two) threads that differ only in their position
// `lane` along one block axis, `step` slots apart in buf; the result is valid at lane 0. Every
// thread of the block must call it.
template <typename Red, typename Acc>
__device__ Acc block_tree(const Red& red, Acc* buf, Acc v, int slot, int lane, int count, int step) {
  buf[slot] = v;
  __syncthreads();
  for (int s = count / 2; s > 0; s /= 2) {
    if (lane < s) buf[slot] = red.combine(buf[slot], buf[slot + s * step]);
    __syncthreads();
  }
  return buf[slot];
}

// Output k (of split `split`) gets the final value, or the accumulator for a later pass.
template <bool kFinish, typename Red, typename Out>
__device__ void store(const Red& red, Out* out, int64_t k, const typename Red::acc_t& acc) {
  if constexpr (kFinish) out[k] = red.finish(acc);
  else out[k] = acc;
}

// inner == 1: block (tx, ty) reduces rows blockIdx.x * ty + threadIdx.y over the split's range
// of r; out[row * splits + split].
template <bool kFinish, typename Red, typename Src, typename Out>
__global__ void reduce_rows_kernel(Red red, Src src, Out* out, int64_t rows, int64_t len, int64_t chunk) {
  using acc_t = typename Red::acc_t;
  __shared__ acc_t buf[kThreads];
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t end = begin + chunk < len ? begin + chunk : len;
  acc_t acc = red.identity();
  if (row < rows)
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc = red.combine(acc, src(row * len + r, r));
  acc = block_tree(red, buf, acc, threadIdx.y * blockDim.x + threadIdx.x, threadIdx.x, blockDim.x, 1);
  if (threadIdx.x == 0 && row < rows) store<kFinish>(red, out, row * gridDim.y + blockIdx.y, acc);
}

// inner > 1: block x covers outputs i of tile (blockIdx.x % tiles) of o = blockIdx.x / tiles;
// threadIdx.y splits the split's range of r; out[(o * inner + i) * splits + split].
template <bool kFinish, typename Red, typename Src, typename Out>
__global__ void reduce_cols_kernel(Red red, Src src, Out* out, int64_t len, int64_t inner, int64_t tiles,
                                   int64_t chunk) {
  using acc_t = typename Red::acc_t;
  __shared__ acc_t buf[kThreads];
  const int64_t o = blockIdx.x / tiles;
  const int64_t i = (blockIdx.x % tiles) * blockDim.x + threadIdx.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t end = begin + chunk < len ? begin + chunk : len;
  acc_t acc = red.identity();
  if (i < inner)
    for (int64_t r = begin + threadIdx.y; r < end; r += blockDim.y)
      acc = red.combine(acc, src((o * len + r) * inner + i, r));
  acc = block_tree(red, buf, acc, threadIdx.y * blockDim.x + threadIdx.x, threadIdx.y, blockDim.y, blockDim.x);
  if (threadIdx.y == 0 && i < inner) store<kFinish>(red, out, (o * inner + i) * gridDim.y + blockIdx.y, acc);
}

// ---- launch plans -------------------------------------------------------------------------------
constexpr int64_t kTargetBlocks = 1024;  // enough blocks to fill an H100 (132 SMs) several times
constexpr int64_t kMinPerThread = 16;    // each thread of a split reduces at least this many elements

struct Plan {
  dim3 grid, block;
  int64_t tiles = 1;   // reduce_cols_kernel: blocks per o
  int64_t chunk = 0;   // elements of r per split
  int64_t splits = 1;
};

int pow2_at_least(int64_t n, int cap) {
  int p = 1;
  while (p < n && p < cap) p *= 2;
  return p;
}

Plan make_plan(int64_t outer, int64_t len, int64_t inner) {
  Plan p;
  int64_t blocks = 0, lanes = 0;  // lanes: threads sharing one output's r
  if (inner == 1) {
    const int tx = pow2_at_least(len, kThreads);
    p.block = dim3(tx, kThreads / tx);
    blocks = (outer + p.block.y - 1) / p.block.y;
    lanes = tx;
  } else {
    const int tx = pow2_at_least(inner, 32);
    p.block = dim3(tx, kThreads / tx);
    p.tiles = (inner + tx - 1) / tx;
    blocks = outer * p.tiles;
    lanes = p.block.y;
  }
  TETHER_CHECK(blocks <= INT32_MAX, "reduction of ", outer * inner, " outputs is too large for one grid");
  int64_t splits = 1;
  if (blocks < kTargetBlocks)
    splits = std::min((kTargetBlocks + blocks - 1) / blocks, std::max<int64_t>(1, len / (lanes * kMinPerThread)));
  p.chunk = (len + splits - 1) / splits;
  p.splits = p.chunk == 0 ? 1 : (len + p.chunk - 1) / p.chunk;  // no empty split
  p.grid = dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(p.splits));
  return p;
}

template <bool kFinish, typename Red, typename Src, typename Out>
void launch(const Red& red, const Src& src, const Plan& p, int64_t outer, int64_t len, int64_t inner, Out* out,
            cudaStream_t stream) {
  if (inner == 1) {
    reduce_rows_kernel<kFinish><<<p.grid, p.block, 0, stream>>>(red, src, out, outer, len, p.chunk);
    TETHER_CHECK_LAUNCH("reduce_rows_kernel");
  } else {
    reduce_cols_kernel<kFinish><<<p.grid, p.block, 0, stream>>>(red, src, out, len, inner, p.tiles, p.chunk);
    TETHER_CHECK_LAUNCH("reduce_cols_kernel");
  }
}

// One [outer, len, inner] reduction into out[o * inner + i]: final values (kFinish) or
// accumulators. Splits of r go through a partial buffer and a second pass.
template <bool kFinish, typename Red, typename Src, typename Out>
void reduce_pass(const Red& red, const Src& src, int64_t outer, int64_t len, int64_t inner, Out* out, int device) {
  using acc_t = typename Red::acc_t;
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  const Plan p = make_plan(outer, len, inner);
  cudaStream_t stream = cuda::stream(device);
  if (p.splits == 1) return launch<kFinish>(red, src, p, outer, len, inner, out, stream);
  // Freed when this returns: the stream runs the second pass before any later user of the block.
  Tensor partial = Tensor::empty({outputs * p.splits * static_cast<int64_t>(sizeof(acc_t))}, DType::u8,
                                 Device::cuda(device));
  acc_t* part = static_cast<acc_t*>(partial.raw_data());
  launch<false>(red, src, p, outer, len, inner, part, stream);
  reduce_pass<kFinish>(red, Load<acc_t, acc_t>{part}, outputs, p.splits, 1, out, device);
}

// Reduces the contiguous x over the flagged dims into out (row-major over the kept dims): one
// pass per group of adjacent reduced dims, innermost first.
template <typename T, typename Red>
void reduce_dims(const Red& red, const Tensor& x, const std::vector<bool>& reduced, typename Red::out_t* out) {
  using acc_t = typename Red::acc_t;
  const int device = device_of(x);
  std::vector<std::pair<int64_t, bool>> groups;  // (size, reduced): runs of dims, size-1 dims dropped
  for (int d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    if (!groups.empty() && groups.back().second == reduced[d]) groups.back().first *= x.size(d);
    else groups.emplace_back(x.size(d), reduced[d]);
  }
  Tensor prev;  // the previous pass's accumulators
  for (;;) {
    int j = static_cast<int>(groups.size()) - 1;
    while (j >= 0 && !groups[j].second) --j;
    int64_t outer = 1, len = 1, inner = 1;
    if (j < 0) {  // only size-1 dims to reduce: one converting pass
      for (const auto& g : groups) inner *= g.first;
      groups.clear();
    } else {
      for (int k = 0; k < j; ++k) outer *= groups[k].first;
      len = groups[j].first;
      for (size_t k = j + 1; k < groups.size(); ++k) inner *= groups[k].first;
      groups.erase(groups.begin() + j);
      if (j > 0 && j < static_cast<int>(groups.size())) {  // the kept neighbours become one group
        groups[j - 1].first *= groups[j].first;
        groups.erase(groups.begin() + j);
      }
    }
    bool last = true;
    for (const auto& g : groups) last &= !g.second;
    const acc_t* in = prev.defined() ? static_cast<const acc_t*>(prev.raw_data()) : nullptr;
    if (last) {
      if (in) reduce_pass<true>(red, Load<acc_t, acc_t>{in}, outer, len, inner, out, device);
      else reduce_pass<true>(red, Load<T, acc_t>{x.data<T>()}, outer, len, inner, out, device);
      return;
    }
    Tensor next = Tensor::empty({outer * inner * static_cast<int64_t>(sizeof(acc_t))}, DType::u8, x.device());
    acc_t* next_p = static_cast<acc_t*>(next.raw_data());
    if (in) reduce_pass<false>(red, Load<acc_t, acc_t>{in}, outer, len, inner, next_p, device);
    else reduce_pass<false>(red, Load<T, acc_t>{x.data<T>()}, outer, len, inner, next_p, device);
    prev = next;
  }
}

// The whole tensor (n elements of src) reduced to a host double.
template <typename Red, typename Src>
double reduce_to_host(const Red& red, const Src& src, int64_t n, Device device) {
  Tensor result = Tensor::empty({}, DType::f64, device);
  reduce_pass<true>(red, src, 1, n, 1, result.data<double>(), device.index);
  return result.item<double>();
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return dispatch_float(x.dtype(), "sum", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const ReducedDims l = reduced_dims(x, dims, keepdim);
    Tensor out = Tensor::empty(l.out_shape, x.dtype(), x.device());
    if (out.numel() == 0) return out;
    if (x.numel() == 0) {  // empty sums are 0
      fill_(out, 0.0);
      return out;
    }
    reduce_dims<scalar_t>(SumRed<scalar_t>{}, ops::contiguous(x), l.reduced, out.data<scalar_t>());
    return out;
  });
}

Tensor amax(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return dispatch_float(x.dtype(), "amax", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const ReducedDims l = reduced_dims(x, dims, keepdim);
    Tensor out = Tensor::empty(l.out_shape, x.dtype(), x.device());
    reduce_dims<scalar_t>(MaxRed<scalar_t>{}, ops::contiguous(x), l.reduced, out.data<scalar_t>());
    return out;
  });
}

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  return dispatch_float(x.dtype(), "argmax", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const ReducedDims l = reduced_dims(x, {dim}, keepdim);
    Tensor out = Tensor::empty(l.out_shape, DType::i64, x.device());
    const Tensor c = ops::contiguous(x);
    const int d = x.wrap_dim(dim);
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; ++k) outer *= x.size(k);
    for (int k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
    reduce_pass<true>(ArgMaxRed<scalar_t>{}, ArgLoad<scalar_t>{c.data<scalar_t>()}, outer, x.size(d), inner,
                      out.data<int64_t>(), device_of(x));
    return out;
  });
}

double sum_all(const Tensor& x) {
  return dispatch_float(x.dtype(), "sum_all", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Tensor c = ops::contiguous(x);
    return reduce_to_host(SumRed<double>{}, Load<scalar_t, double>{c.data<scalar_t>()}, c.numel(), c.device());
  });
}

double dot(const Tensor& a, const Tensor& b) {
  return dispatch_float(a.dtype(), "dot", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Tensor ac = ops::contiguous(a), bc = ops::contiguous(b);
    return reduce_to_host(SumRed<double>{}, DotLoad<scalar_t>{ac.data<scalar_t>(), bc.data<scalar_t>()},
                          ac.numel(), ac.device());
  });
}

double norm(const Tensor& x, double p) {
  return dispatch_float(x.dtype(), "norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const Tensor c = ops::contiguous(x);
    const scalar_t* v = c.data<scalar_t>();
    const int64_t n = c.numel();
    if (std::isinf(p)) return reduce_to_host(MaxAbsRed{}, AbsLoad<scalar_t>{v}, n, c.device());
    if (p == 2.0) return std::sqrt(reduce_to_host(SumRed<double>{}, SquareLoad<scalar_t>{v}, n, c.device()));
    if (p == 1.0) return reduce_to_host(SumRed<double>{}, AbsLoad<scalar_t>{v}, n, c.device());
    return std::pow(reduce_to_host(SumRed<double>{}, PowAbsLoad<scalar_t>{v, p}, n, c.device()), 1.0 / p);
  });
}

}  // namespace tether::cuda
