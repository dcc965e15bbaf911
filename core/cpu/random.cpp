// Random fills on the CPU. A draw of n values uses Philox blocks first .. first + ceil(n/4) - 1,
// four values per block, so the values do not depend on the number of threads (and the CUDA
// kernels can reproduce them).
#include <cmath>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/random_fill.h"

namespace tether::cpu {

namespace {
// Fills a contiguous tensor four elements per Philox block: elements 4j..4j+3 come from
// block (first + j), whose four 32-bit words `map` turns into four values. Parallel over
// blocks, so the values do not depend on the number of threads.
template <typename Map>
void fill_blocks(const Tensor& t, Generator& gen, Map map) {
  const FillBlocks fb = reserve_fill_blocks(t, gen);
  const int64_t n = fb.n, blocks = fb.blocks;
  const uint64_t seed = fb.seed, first = fb.first;
  dispatch_float(t.dtype(), "random fill", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* p = t.data<scalar_t>();
    parallel_chunks(blocks * 4, [&](int64_t b, int64_t e) {  // chunk bounds in elements
      for (int64_t j = (b + 3) / 4; 4 * j < e; ++j) {  // the blocks whose first element is in [b, e)
        const std::array<uint32_t, 4> w = philox4x32(seed, first + static_cast<uint64_t>(j), 0);
        double v[4];
        map(w, v);
        for (int k = 0; k < 4 && 4 * j + k < n; ++k) p[4 * j + k] = static_cast<scalar_t>(v[k]);
      }
    });
  });
}

}  // namespace

void uniform_(const Tensor& t, double lo, double hi, Generator& gen) {
  fill_blocks(t, gen, [lo, hi](const std::array<uint32_t, 4>& w, double* v) {
    for (int k = 0; k < 4; ++k) v[k] = lo + (hi - lo) * unit(w[k]);
  });
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  // Box-Muller: each pair of words gives two normals (cosine and sine branches).
  fill_blocks(t, gen, [mean, std](const std::array<uint32_t, 4>& w, double* v) {
    for (int pair = 0; pair < 2; ++pair) {
      const double r = std::sqrt(-2.0 * std::log(unit_open0(w[2 * pair])));
      const double theta = 2.0 * M_PI * unit(w[2 * pair + 1]);
      v[2 * pair] = mean + std * r * std::cos(theta);
      v[2 * pair + 1] = mean + std * r * std::sin(theta);
    }
  });
}

void bernoulli_(const Tensor& t, double p, Generator& gen) {
  fill_blocks(t, gen, [p](const std::array<uint32_t, 4>& w, double* v) {
    for (int k = 0; k < 4; ++k) v[k] = unit(w[k]) < p ? 1.0 : 0.0;
  });
}

Tensor dropout_mask(const Shape& shape, double p, DType dtype, Device device, Generator& gen) {
  Tensor mask = Tensor::empty(shape, dtype, device);
  const double keep = 1.0 - p, scale = 1.0 / keep;
  fill_blocks(mask, gen, [keep, scale](const std::array<uint32_t, 4>& w, double* v) {
    for (int k = 0; k < 4; ++k) v[k] = unit(w[k]) < keep ? scale : 0.0;
  });
  return mask;
}

}  // namespace tether::cpu
