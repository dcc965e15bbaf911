// Float64 finite-difference checks for softmax, log_softmax, cross_entropy and dropout.
#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

TEST_SUITE("gradcheck") {
  TEST_CASE("softmax and log_softmax on first, middle and last dims") {
    Tensor x = randn({3, 4, 5}, 41, DType::f64, true);
    for (int dim : {0, 1, 2, -1}) {
      CAPTURE(dim);
      TETHER_GRADCHECK([dim](auto& in) { return softmax(in[0], dim); }, std::vector<Tensor>{x});
      TETHER_GRADCHECK([dim](auto& in) { return log_softmax(in[0], dim); }, std::vector<Tensor>{x});
    }
    // Through a strided view, and composed (the gradient flows back through both ops).
    TETHER_GRADCHECK([](auto& in) { return softmax(transpose(in[0], 0, 2), 1); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return log_softmax(softmax(in[0], 0) * 3.0, 2); }, std::vector<Tensor>{x});
  }

  TEST_CASE("cross_entropy with label smoothing 0 and 0.1, every reduction") {
    Tensor logits = randn({5, 4}, 42, DType::f64, true);
    Tensor target = Tensor::from_vector(std::vector<int64_t>{3, 0, 1, 3, 2}, {5});
    for (double s : {0.0, 0.1})
      for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
        CAPTURE(s);
        CAPTURE(static_cast<int>(red));
        TETHER_GRADCHECK([&](auto& in) { return cross_entropy(in[0], target, s, red); }, std::vector<Tensor>{logits});
      }
    // Logits produced by another op (a non-leaf input), reduced further.
    TETHER_GRADCHECK([&](auto& in) { return sum(cross_entropy(in[0] * 2.0, target, 0.1, Reduction::none)); },
                     std::vector<Tensor>{logits});
  }

  TEST_CASE("dropout with a fixed mask") {
    Tensor x = randn({6, 7}, 43, DType::f64, true);
    // A fresh Generator per call: every evaluation draws the same mask, so f is deterministic.
    TETHER_GRADCHECK(
        [](auto& in) {
          Generator gen(99);
          return dropout(in[0], 0.4, /*training=*/true, gen);
        },
        std::vector<Tensor>{x});
    TETHER_GRADCHECK(
        [](auto& in) {
          Generator gen(99);
          return dropout(in[0], 0.4, /*training=*/false, gen) * 2.0;
        },
        std::vector<Tensor>{x});
  }
}
