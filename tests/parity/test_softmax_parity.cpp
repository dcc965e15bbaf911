// softmax, log_softmax and cross_entropy (label smoothing, every reduction) against PyTorch,
// values and gradients in f32.
// Tolerance: rtol 1e-5, atol 1e-6 (float32 rounding; tether accumulates the softmax sums and
// the cross-entropy in double, PyTorch in float). The huge-logit cases use atol 1e-3 on the
// log-probabilities, which are ~2e4 in magnitude there (f32 spacing ~2e-3).
#include <string>

#include "autograd/engine.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

// Compares value and input gradient of `fn` on case `name` of the reference.
template <typename Fn>
void check_case(const parity::Reference& ref, const std::string& name, Fn fn, double atol = 1e-6) {
  CAPTURE(name);
  Tensor x = ref.at(name + ".in0").clone().set_requires_grad();
  Tensor y = fn(x);
  parity::expect_close(name + " value", y, ref.at(name + ".out"), 1e-5, atol);
  std::vector<Tensor> g = grad({y}, {x}, {ref.at(name + ".v")});
  parity::expect_close(name + " grad", g[0], ref.at(name + ".grad0"), 1e-5, 1e-6);
}

}  // namespace

TEST_SUITE("parity") {
  TEST_CASE("softmax and log_softmax match PyTorch") {
    auto ref = parity::reference("ref_softmax.py");
    if (!ref) return;
    for (int dim : {0, 1, 2}) {
      check_case(*ref, "softmax_" + std::to_string(dim), [dim](const Tensor& x) { return softmax(x, dim); });
      check_case(*ref, "log_softmax_" + std::to_string(dim), [dim](const Tensor& x) { return log_softmax(x, dim); });
    }
    check_case(*ref, "softmax_big", [](const Tensor& x) { return softmax(x, 1); });
    check_case(*ref, "log_softmax_big", [](const Tensor& x) { return log_softmax(x, 1); }, 1e-3);
  }

  TEST_CASE("cross_entropy matches PyTorch for label smoothing and every reduction") {
    auto ref = parity::reference("ref_softmax.py");
    if (!ref) return;
    const Tensor& target = ref->at("ce.target");
    REQUIRE(target.dtype() == DType::i64);
    for (const char* s : {"0.0", "0.1", "0.3"})
      for (auto [red, rname] : {std::pair{Reduction::none, "none"}, std::pair{Reduction::mean, "mean"},
                                std::pair{Reduction::sum, "sum"}}) {
        const double smoothing = std::stod(s);
        check_case(*ref, std::string("ce_") + rname + "_" + s, [&, red = red](const Tensor& x) {
          return reshape(cross_entropy(x, target, smoothing, red), {-1});
        });
      }
  }
}
