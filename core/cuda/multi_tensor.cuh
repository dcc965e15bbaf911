// Multi-tensor launches (PyTorch's multi_tensor_apply, simplified): one kernel launch works on a
// whole list of tensors -- an optimizer step over every parameter, a penalty over a parameter
// set -- instead of one launch per tensor.
//
// The host describes each tensor as an Item: up to Depth device pointers (parameter, gradient,
// buffers; null where absent), its length in work units (elements, or rows for row-wise
// kernels), how many units one block handles (a "chunk") and per-tensor scalars (Extra). launch()
// packs up to kMaxTensors items into a Pack that is passed by value as the kernel argument
// (__grid_constant__; sm_70+ with CUDA >= 12.1 allows 32 KiB of arguments), so nothing is
// uploaded and nothing waits; a longer list takes several launches. Block b of a launch finds its
// tensor by binary search over the running chunk counts and calls op(pack, tensor, chunk).
//
// Reductions: the caller numbers every chunk of the call (assign_slots), so a block writes its
// partial result to out[item.slot + chunk], whichever launch it ran in; adding a tensor's partials
// in slot order then gives the same bits for any launch split, device or thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/common.h"

namespace tether::cuda::mt {

constexpr int64_t kChunk = int64_t{1} << 16;  // elements per block for elementwise kernels
constexpr int kMaxTensors = 256;              // tensors per launch
constexpr int kWarps = kThreads / 32;         // blocks are kThreads wide

struct NoExtra {};

// One tensor of a call, as the host describes it.
template <int Depth, typename Extra = NoExtra>
struct Item {
  void* ptr[Depth] = {};
  int64_t units = 0;           // elements or rows; 0: nothing to launch (no chunk, no slot)
  int64_t per_chunk = kChunk;  // units per block
  int64_t slot = 0;            // call-wide index of its first chunk (assign_slots)
  Extra extra{};
};

// One launch's table, the kernel's argument.
template <int Depth, typename Extra = NoExtra>
struct Pack {
  int count = 0;
  void* ptr[Depth][kMaxTensors];
  int64_t units[kMaxTensors];
  int64_t per_chunk[kMaxTensors];
  int64_t chunk_end[kMaxTensors];  // chunks of this launch's tensors 0..t together
  int64_t slot[kMaxTensors];
  Extra extra[kMaxTensors];
};

__host__ __device__ inline int64_t chunks_of(int64_t units, int64_t per_chunk) {
  return (units + per_chunk - 1) / per_chunk;
}

// Numbers the chunks of `items` in order (item.slot); returns their total.
template <int Depth, typename Extra>
int64_t assign_slots(std::vector<Item<Depth, Extra>>& items) {
  int64_t total = 0;
  for (auto& item : items) {
    item.slot = total;
    total += chunks_of(item.units, item.per_chunk);
  }
  return total;
}

// A device buffer of n doubles for partial results (at least one element).
inline Tensor scratch(int64_t n, Device device) { return Tensor::empty({n > 0 ? n : 1}, DType::f64, device); }

// Adds each item's partials in slot order, from the call's partials copied back to the host
// (partials.to_vector<double>(): one synchronising copy): out[i] = Σ over the chunks of items[i]
// of host[offset + slot] (0 for an item without units).
template <int Depth, typename Extra>
std::vector<double> sum_slots(const std::vector<double>& host, const std::vector<Item<Depth, Extra>>& items,
                              int64_t offset = 0) {
  std::vector<double> out(items.size(), 0.0);
  for (size_t i = 0; i < items.size(); ++i) {
    const int64_t end = items[i].slot + chunks_of(items[i].units, items[i].per_chunk);
    for (int64_t s = items[i].slot; s < end; ++s) out[i] += host[static_cast<size_t>(offset + s)];
  }
  return out;
}

#ifdef __CUDACC__

// The units [lo, hi) of chunk `chunk` of tensor t.
template <typename P>
__device__ inline void chunk_range(const P& pack, int t, int64_t chunk, int64_t& lo, int64_t& hi) {
  lo = chunk * pack.per_chunk[t];
  hi = min(pack.units[t], lo + pack.per_chunk[t]);
}

template <typename P, typename Op>
__global__ void __launch_bounds__(kThreads) multi_tensor_kernel(const __grid_constant__ P pack, const Op op) {
  const int64_t b = blockIdx.x;
  int lo = 0, hi = pack.count - 1;  // the first tensor whose chunk_end passes b
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (pack.chunk_end[mid] > b) hi = mid;
    else lo = mid + 1;
  }
  op(pack, lo, b - (lo == 0 ? 0 : pack.chunk_end[lo - 1]));
}

// Runs op over every chunk of `items` (subsets of one call keep their slots), kMaxTensors
// tensors per launch, on `stream`.
template <int Depth, typename Extra, typename Op>
void launch(const std::vector<Item<Depth, Extra>>& items, cudaStream_t stream, const Op& op, const char* name) {
  using P = Pack<Depth, Extra>;
  // The kernel's arguments are the pack and the op together (CUDA's limit: 32764 bytes).
  static_assert(sizeof(P) + sizeof(Op) <= 32000, "multi-tensor pack and op exceed the 32 KiB kernel-argument limit");
  auto pack = std::make_unique<P>();  // ~25 KiB: off the host stack
  int64_t chunks = 0;
  auto flush = [&] {
    if (pack->count == 0) return;
    TETHER_CHECK(chunks < (int64_t{1} << 31), "multi-tensor launch ", name, ": ", chunks, " blocks");
    multi_tensor_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(*pack, op);
    TETHER_CHECK_LAUNCH(name);
    pack->count = 0;
    chunks = 0;
  };
  for (const auto& item : items) {
    if (item.units == 0) continue;
    if (pack->count == kMaxTensors) flush();
    const int t = pack->count++;
    for (int d = 0; d < Depth; ++d) pack->ptr[d][t] = item.ptr[d];
    pack->units[t] = item.units;
    pack->per_chunk[t] = item.per_chunk;
    chunks += chunks_of(item.units, item.per_chunk);
    pack->chunk_end[t] = chunks;
    pack->slot[t] = item.slot;
    pack->extra[t] = item.extra;
  }
  flush();
}

// ---- deterministic reductions (blockDim.x == kThreads) ---------------------------------------

// Σ over the warp by a butterfly: every lane ends with the same bits (a + b == b + a exactly).
__device__ inline double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Σ over the block in a fixed tree, the result in every thread. Call it from all threads.
__device__ inline double block_sum(double v) {
  __shared__ double part[kWarps];
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kWarps; ++w) total += part[w];
  __syncthreads();  // `part` may be written again by the next call
  return total;
}

#endif  // __CUDACC__

}  // namespace tether::cuda::mt
