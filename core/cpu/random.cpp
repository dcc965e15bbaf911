// Random fills on the CPU. Element i of a draw uses counter (offset + i) of the Philox stream,
// so the values do not depend on the number of threads (and match the CUDA kernels).
#include <cmath>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"

namespace tether::cpu {

namespace {
// Fills a contiguous tensor with value(i, seed, start) for each element i, in parallel.
template <typename Fn>
void fill_indexed(const Tensor& t, Generator& gen, uint64_t counters_per_element, Fn value) {
  TETHER_CHECK(t.is_contiguous(), "random fill needs a contiguous tensor, got ", t.str());
  const uint64_t seed = gen.seed();
  const uint64_t start = gen.advance(static_cast<uint64_t>(t.numel()) * counters_per_element);
  dispatch_float(t.dtype(), "random fill", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* p = t.data<scalar_t>();
    parallel_chunks(t.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        p[i] = static_cast<scalar_t>(value(seed, start + static_cast<uint64_t>(i) * counters_per_element));
    });
  });
}

// Uniform in (0, 1] from one 32-bit draw (never 0, so log() is finite).
double unit_open0(uint64_t seed, uint64_t counter) {
  return (static_cast<double>(philox_u32(seed, counter)) + 1.0) * (1.0 / 4294967296.0);
}
}  // namespace

void uniform_(const Tensor& t, double lo, double hi, Generator& gen) {
  fill_indexed(t, gen, 1, [lo, hi](uint64_t seed, uint64_t c) {
    return lo + (hi - lo) * static_cast<double>(philox_u32(seed, c)) * (1.0 / 4294967296.0);
  });
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  // Box-Muller on two counters per element (the cosine branch only: simple and parallel).
  fill_indexed(t, gen, 2, [mean, std](uint64_t seed, uint64_t c) {
    const double u1 = unit_open0(seed, c), u2 = unit_open0(seed, c + 1);
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

void bernoulli_(const Tensor& t, double p, Generator& gen) {
  fill_indexed(t, gen, 1, [p](uint64_t seed, uint64_t c) {
    return static_cast<double>(philox_u32(seed, c)) * (1.0 / 4294967296.0) < p ? 1.0 : 0.0;
  });
}

Tensor dropout_mask(const Shape& shape, double p, DType dtype, Generator& gen) {
  Tensor mask = Tensor::empty(shape, dtype);
  const double keep = 1.0 - p, scale = 1.0 / keep;
  fill_indexed(mask, gen, 1, [keep, scale](uint64_t seed, uint64_t c) {
    return static_cast<double>(philox_u32(seed, c)) * (1.0 / 4294967296.0) < keep ? scale : 0.0;
  });
  return mask;
}

}  // namespace tether::cpu
