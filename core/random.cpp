#include "core/random.h"

#include "core/philox.h"

namespace tether {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi) {
  const PhiloxBlock b = philox_block(key, counter_lo, counter_hi);  // core/philox.h, shared with the GPU
  return {b.w[0], b.w[1], b.w[2], b.w[3]};
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

uint32_t Generator::next_u32() { return philox_u32(seed_, offset_++); }

double Generator::next_uniform() {
  const uint64_t hi = next_u32(), lo = next_u32();
  return static_cast<double>(((hi << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

uint64_t Generator::next_below(uint64_t n) {
  TETHER_CHECK(n > 0, "next_below(0)");
  // Rejection sampling removes the modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t r = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
    if (r < limit) return r % n;
  }
}

}  // namespace tether
