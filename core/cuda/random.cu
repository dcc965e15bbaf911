// Random fills on CUDA (core/cpu/random.cpp on the GPU), value for value: a draw of n values
// reserves Philox blocks first .. first + ceil(n/4) - 1 of the generator (advance_blocks),
// and thread j turns block first + j into elements 4j..4j+3 with the CPU's maps, computed in
// double and then cast, so a Generator state gives the same tensor on either device.
//
// Rounding as the CPU build does it: GCC fuses `lo + (hi - lo) * u` and `mean + std * r * cos`
// into fused multiply-adds (-march=native, C++'s default -ffp-contract=fast), so these are
// written as fma() here rather than left to nvcc's contraction.
#include <cmath>

#include "core/cuda/common.h"
#include "core/cuda/elem_util.cuh"
#include "core/cuda/kernels.h"
#include "core/philox.h"
#include "core/random_fill.h"

namespace tether::cuda {

namespace {

struct UniformMap {
  double lo, hi;
  __device__ void operator()(const PhiloxBlock& b, double* v) const {
    for (int k = 0; k < 4; ++k) v[k] = fma(hi - lo, unit(b.w[k]), lo);
  }
};

// Box-Muller: each pair of words gives two normals (cosine and sine branches).
struct NormalMap {
  double mean, stddev;
  __device__ void operator()(const PhiloxBlock& b, double* v) const {
    for (int pair = 0; pair < 2; ++pair) {
      const double r = sqrt(-2.0 * log(unit_open0(b.w[2 * pair])));
      const double theta = 2.0 * M_PI * unit(b.w[2 * pair + 1]);
      v[2 * pair] = fma(stddev * r, cos(theta), mean);
      v[2 * pair + 1] = fma(stddev * r, sin(theta), mean);
    }
  }
};

struct BernoulliMap {
  double p;
  __device__ void operator()(const PhiloxBlock& b, double* v) const {
    for (int k = 0; k < 4; ++k) v[k] = unit(b.w[k]) < p ? 1.0 : 0.0;
  }
};

struct DropoutMap {
  double keep, scale;
  __device__ void operator()(const PhiloxBlock& b, double* v) const {
    for (int k = 0; k < 4; ++k) v[k] = unit(b.w[k]) < keep ? scale : 0.0;
  }
};

template <typename T, typename Map>
__global__ void fill_blocks_kernel(T* p, int64_t n, int64_t blocks, uint64_t seed, uint64_t first, Map map) {
  for (int64_t j = grid_thread(); j < blocks; j += grid_threads()) {
    const PhiloxBlock b = philox_block(seed, first + static_cast<uint64_t>(j), 0);
    double v[4];
    map(b, v);
    for (int k = 0; k < 4 && 4 * j + k < n; ++k) p[4 * j + k] = static_cast<T>(v[k]);
  }
}

// Fills a contiguous tensor four elements per Philox block, as the CPU's fill_blocks.
template <typename Map>
void fill_blocks(const Tensor& t, Generator& gen, Map map) {
  const FillBlocks fb = reserve_fill_blocks(t, gen);
  const int64_t n = fb.n, blocks = fb.blocks;
  const uint64_t seed = fb.seed, first = fb.first;
  dispatch_float(t.dtype(), "random fill", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* p = t.data<scalar_t>();
    cudaStream_t stream = stream_of(t);
    if (blocks == 0) return;
    fill_blocks_kernel<<<blocks_for(blocks), kThreads, 0, stream>>>(p, n, blocks, seed, first, map);
    TETHER_CHECK_LAUNCH("fill_blocks_kernel");
  });
}

}  // namespace

void uniform_(const Tensor& t, double lo, double hi, Generator& gen) { fill_blocks(t, gen, UniformMap{lo, hi}); }

void normal_(const Tensor& t, double mean, double std, Generator& gen) { fill_blocks(t, gen, NormalMap{mean, std}); }

void bernoulli_(const Tensor& t, double p, Generator& gen) { fill_blocks(t, gen, BernoulliMap{p}); }

Tensor dropout_mask(const Shape& shape, double p, DType dtype, Device device, Generator& gen) {
  Tensor mask = Tensor::empty(shape, dtype, device);
  const double keep = 1.0 - p, scale = 1.0 / keep;
  fill_blocks(mask, gen, DropoutMap{keep, scale});
  return mask;
}

}  // namespace tether::cuda
