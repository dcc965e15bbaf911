// Seeded random numbers. Philox4x32-10 (Salmon et al., 2011), counter-based: a block of four
// 32-bit words depends only on (seed, block index), so results are identical for any thread
// count and on the GPU. A tensor draw of n values takes the next ceil(n/4) blocks; host draws
// (next_u32) take one word at a time. `offset` counts words.
#pragma once
#include <array>
#include <cstdint>

#include "core/check.h"

namespace tether {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Reserves n whole blocks (starting at the next block boundary) and returns the first
  // block index, for a kernel to evaluate in parallel.
  uint64_t advance_blocks(uint64_t n) {
    const uint64_t first = (offset_ + 3) / 4;
    offset_ = (first + n) * 4;
    return first;
  }
  // State for checkpoints: (seed, offset) restores the stream exactly.
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }

  // Host-side draws (data shuffling, augmentation parameters).
  uint32_t next_u32();
  double next_uniform();                       // [0, 1)
  uint64_t next_below(uint64_t n);             // uniform integer in [0, n)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used where PyTorch uses its global one (layer initialisation,
// dropout in modules); manual_seed resets it, as torch.manual_seed.
Generator& default_generator();
void manual_seed(uint64_t seed);

// The Philox4x32-10 block function: 4 random 32-bit words for (key, counter).
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi);
// The i-th 32-bit value of the stream (seed, i): word i%4 of block i/4.
inline uint32_t philox_u32(uint64_t seed, uint64_t i) { return philox4x32(seed, i / 4, 0)[i % 4]; }
// Uniform in [0, 1) with 24 random bits (exactly representable in f32), and with 53 bits.
inline float u32_to_unit_float(uint32_t r) { return static_cast<float>(r >> 8) * (1.0f / 16777216.0f); }

}  // namespace tether
