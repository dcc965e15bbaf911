// What the CPU and CUDA random fills (core/cpu/random.cpp, core/cuda/random.cu) share: the
// Philox blocks a fill reserves from its generator, and the maps from a 32-bit word to a
// double in [0, 1) or (0, 1]. Each back end turns block first + j into elements 4j..4j+3.
#pragma once
#include <cstdint>

#include "core/host_device.h"
#include "core/random.h"
#include "core/tensor.h"

namespace tether {

// The blocks of a fill of `n` elements: first .. first + blocks - 1 under key `seed`.
struct FillBlocks {
  int64_t n, blocks;
  uint64_t seed, first;
};
// Checks that `t` is contiguous and advances `gen` past the ceil(numel/4) blocks it takes.
inline FillBlocks reserve_fill_blocks(const Tensor& t, Generator& gen) {
  TETHER_CHECK(t.is_contiguous(), "random fill needs a contiguous tensor, got ", t.str());
  const int64_t n = t.numel();
  const int64_t blocks = (n + 3) / 4;
  const uint64_t seed = gen.seed();
  const uint64_t first = gen.advance_blocks(static_cast<uint64_t>(blocks));
  return {n, blocks, seed, first};
}

constexpr double kTwoPow32Inv = 1.0 / 4294967296.0;
// [0, 1) from one 32-bit word, and (0, 1] (never 0, so log() is finite).
TETHER_HOST_DEVICE inline double unit(uint32_t w) { return static_cast<double>(w) * kTwoPow32Inv; }
TETHER_HOST_DEVICE inline double unit_open0(uint32_t w) { return (static_cast<double>(w) + 1.0) * kTwoPow32Inv; }

}  // namespace tether
