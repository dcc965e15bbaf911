// Float64 finite-difference checks for pooling and batch normalisation (train and eval).
#include <algorithm>
#include <numeric>
#include <random>

#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

namespace {

// Distinct values 0.1 apart in random order: max pooling has no ties, so it is
// differentiable at the input and central differences see a single winner.
Tensor distinct_values(const Shape& shape, uint64_t seed) {
  std::vector<double> v(shape_numel(shape));
  std::iota(v.begin(), v.end(), 0.0);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  for (double& e : v) e = 0.1 * e - 1.0;
  Tensor t = Tensor::from_vector<double>(v, shape);
  t.set_requires_grad(true);
  return t;
}

Pool2dParams pool(std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> pad,
                  std::array<int64_t, 2> d = {1, 1}, bool ceil_mode = false, bool count_include_pad = true) {
  Pool2dParams p;
  p.kernel = k;
  p.stride = s;
  p.padding = pad;
  p.dilation = d;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

}  // namespace

TEST_SUITE("gradcheck") {
  TEST_CASE("max_pool2d") {
    Tensor x = distinct_values({2, 2, 7, 6}, 1);
    for (const Pool2dParams& p : {pool({3, 3}, {2, 2}, {1, 1}), pool({2, 2}, {1, 1}, {0, 0}, {2, 2}, true),
                                  pool({3, 2}, {2, 1}, {1, 0}, {1, 1}, true), pool({2, 3}, {2, 2}, {1, 1}, {1, 2})}) {
      TETHER_GRADCHECK([p](auto& in) { return max_pool2d(in[0], p); }, std::vector<Tensor>{x});
    }
  }

  TEST_CASE("avg_pool2d with padding, ceil_mode and both count_include_pad settings") {
    Tensor x = randn({2, 2, 7, 6}, 2, DType::f64, true);
    for (bool include : {true, false})
      for (bool ceil_mode : {false, true}) {
        CAPTURE(include);
        CAPTURE(ceil_mode);
        for (const Pool2dParams& p : {pool({3, 3}, {2, 2}, {1, 1}, {1, 1}, ceil_mode, include),
                                      pool({2, 3}, {3, 2}, {1, 1}, {1, 1}, ceil_mode, include),
                                      pool({3, 2}, {1, 2}, {0, 1}, {1, 1}, ceil_mode, include)}) {
          TETHER_GRADCHECK([p](auto& in) { return avg_pool2d(in[0], p); }, std::vector<Tensor>{x});
        }
      }
  }

  TEST_CASE("adaptive_avg_pool2d, non-divisible and global sizes") {
    Tensor x = randn({2, 3, 5, 7}, 3, DType::f64, true);
    for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{3, 3}, {3, 4}, {1, 1}, {5, 7}, {7, 9}, {2, 5}}) {
      CAPTURE(oh);
      CAPTURE(ow);
      TETHER_GRADCHECK([oh = oh, ow = ow](auto& in) { return adaptive_avg_pool2d(in[0], oh, ow); },
                       std::vector<Tensor>{x});
    }
  }

  TEST_CASE("batch_norm in training mode: x, weight and bias, 2-D and 4-D") {
    for (const Shape& xs : std::vector<Shape>{{5, 3}, {2, 3, 3, 2}, {4, 2, 1, 1}}) {
      CAPTURE(shape_str(xs));
      const int64_t C = xs[1];
      Tensor x = randn(xs, 10, DType::f64, true);
      Tensor w = uniform({C}, 0.5, 1.5, 11, DType::f64, true);
      Tensor b = randn({C}, 12, DType::f64, true);
      Tensor rm = Tensor::zeros({C}, DType::f64), rv = Tensor::ones({C}, DType::f64);
      // The running statistics change on every call but do not affect the training output.
      TETHER_GRADCHECK([rm, rv](auto& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5); },
                       std::vector<Tensor>{x, w, b});
      // Without affine parameters, and with only the parameters requiring grad.
      TETHER_GRADCHECK([](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                       std::vector<Tensor>{x});
      Tensor x_const = randn(xs, 13);
      TETHER_GRADCHECK([x_const](auto& in) { return batch_norm(x_const, in[0], in[1], Tensor(), Tensor(), true); },
                       std::vector<Tensor>{w, b});
    }
  }

  TEST_CASE("batch_norm in eval mode") {
    for (const Shape& xs : std::vector<Shape>{{5, 3}, {2, 3, 3, 2}}) {
      CAPTURE(shape_str(xs));
      const int64_t C = xs[1];
      Tensor x = randn(xs, 20, DType::f64, true);
      Tensor w = randn({C}, 21, DType::f64, true);
      Tensor b = randn({C}, 22, DType::f64, true);
      Tensor rm = randn({C}, 23), rv = uniform({C}, 0.5, 2.0, 24);
      TETHER_GRADCHECK([rm, rv](auto& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5); },
                       std::vector<Tensor>{x, w, b});
    }
  }

  TEST_CASE("pool and batch_norm compose (a small ResNet-like stem)") {
    Tensor x = randn({2, 2, 6, 6}, 30, DType::f64, true);
    Tensor w = uniform({2}, 0.5, 1.5, 31, DType::f64, true);
    Tensor b = randn({2}, 32, DType::f64, true);
    TETHER_GRADCHECK(
        [](auto& in) {
          Tensor h = tanh(batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true));
          return adaptive_avg_pool2d(avg_pool2d(h, pool({3, 3}, {2, 2}, {1, 1})), 1, 1);
        },
        std::vector<Tensor>{x, w, b});
  }
}
