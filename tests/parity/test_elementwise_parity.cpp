// Elementwise ops and reductions against PyTorch (values and gradients, f32).
// Tolerance: rtol 1e-5, atol 1e-6 (float32 rounding of single elementwise ops; reductions
// accumulate in double here and in float there).
#include <functional>

#include "autograd/engine.h"
#include "tests/parity/parity_util.h"

using namespace tether;

TEST_SUITE("parity") {
  TEST_CASE("elementwise ops and reductions match PyTorch") {
    auto ref = parity::reference("ref_elementwise.py");
    if (!ref) return;
    using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
    const std::vector<std::pair<std::string, Fn>> cases = {
        {"add", [](auto& x) { return x[0] + x[1]; }},
        {"sub", [](auto& x) { return x[0] - x[1]; }},
        {"mul", [](auto& x) { return x[0] * x[1]; }},
        {"div", [](auto& x) { return x[0] / x[1]; }},
        {"pow", [](auto& x) { return pow(x[0], x[1]); }},
        {"maximum", [](auto& x) { return maximum(x[0], x[1]); }},
        {"exp", [](auto& x) { return exp(x[0]); }},
        {"tanh", [](auto& x) { return tanh(x[0]); }},
        {"sigmoid", [](auto& x) { return sigmoid(x[0]); }},
        {"relu", [](auto& x) { return relu(x[0]); }},
        {"abs", [](auto& x) { return abs(x[0]); }},
        {"neg", [](auto& x) { return -x[0]; }},
        {"silu", [](auto& x) { return silu(x[0]); }},
        {"log", [](auto& x) { return log(x[0]); }},
        {"sqrt", [](auto& x) { return sqrt(x[0]); }},
        {"clamp", [](auto& x) { return clamp(x[0], -0.5, 0.7); }},
        {"sum_all", [](auto& x) { return reshape(sum(x[0]), {1}); }},
        {"sum_02", [](auto& x) { return sum(x[0], {0, 2}); }},
        {"mean_1k", [](auto& x) { return mean(x[0], {1}, true); }},
        {"amax_2", [](auto& x) { return amax(x[0], 2); }},
        {"norm", [](auto& x) { return reshape(norm(x[0]), {1}); }},
        {"softplus_chain", [](auto& x) { return log(exp(x[0]) + 1.0) * x[0] - x[0] / 3.0; }},
    };
    for (const auto& [name, fn] : cases) {
      CAPTURE(name);
      std::vector<Tensor> inputs;
      for (int i = 0; ref->has(name + ".in" + std::to_string(i)); ++i)
        inputs.push_back(ref->at(name + ".in" + std::to_string(i)).clone().set_requires_grad());
      Tensor y = fn(inputs);
      parity::expect_close(name + " value", y, ref->at(name + ".out"), 1e-5, 1e-6);
      std::vector<Tensor> grads = grad({y}, inputs, {ref->at(name + ".v")});
      for (size_t i = 0; i < inputs.size(); ++i)
        parity::expect_close(name + " grad" + std::to_string(i), grads[i], ref->at(name + ".grad" + std::to_string(i)),
                             1e-5, 1e-5);
    }
  }
}
