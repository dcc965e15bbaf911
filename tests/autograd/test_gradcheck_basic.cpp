// Float64 finite-difference checks for elementwise ops, reductions and views.
#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

TEST_SUITE("gradcheck") {
  TEST_CASE("gradcheck itself catches a wrong gradient") {
    // A function whose recorded graph disagrees with its value: the value is x^2 (the
    // correction term is computed by raw, unrecorded kernels) but the graph only knows 3x,
    // so autograd says 3 where finite differences say 2x. gradcheck must reject it.
    Tensor x = uniform({5}, 0.5, 2.0, 1, DType::f64, true);
    auto wrong = [](const std::vector<Tensor>& in) {
      // Forward computes x^2 but records the graph of 3x: a wrong backward.
      Tensor fake = in[0] * 3.0;
      Tensor correct = ops::unary(ops::Unary::square, in[0]);
      return fake + (correct - ops::mul_scalar(in[0], 3.0));  // value x^2, gradient 3
    };
    GradcheckResult r = gradcheck(wrong, {x});
    CHECK(!r.ok);
    CHECK(r.message.find("analytic") != std::string::npos);
  }

  TEST_CASE("binary ops with broadcasting") {
    Tensor a = randn({3, 4}, 1, DType::f64, true);
    Tensor b = randn({4}, 2, DType::f64, true);
    Tensor pos = uniform({3, 1}, 0.5, 2.0, 3, DType::f64, true);
    TETHER_GRADCHECK([](auto& in) { return in[0] + in[1]; }, std::vector<Tensor>{a, b});
    TETHER_GRADCHECK([](auto& in) { return in[0] - in[1]; }, std::vector<Tensor>{a, b});
    TETHER_GRADCHECK([](auto& in) { return in[0] * in[1]; }, std::vector<Tensor>{a, b});
    TETHER_GRADCHECK([](auto& in) { return in[0] / in[1]; }, std::vector<Tensor>{a, pos});
    TETHER_GRADCHECK([](auto& in) { return pow(in[1], in[0]); }, std::vector<Tensor>{a, pos});
    TETHER_GRADCHECK([](auto& in) { return maximum(in[0], in[1]); }, std::vector<Tensor>{a, b});
    TETHER_GRADCHECK([](auto& in) { return in[0] * 2.5 + 1.0; }, std::vector<Tensor>{a});
    TETHER_GRADCHECK([](auto& in) { return pow(in[0], 3.0); }, std::vector<Tensor>{a});
  }

  TEST_CASE("unary ops") {
    Tensor x = randn({2, 3, 4}, 4, DType::f64, true);
    Tensor pos = uniform({2, 3, 4}, 0.5, 3.0, 5, DType::f64, true);
    // Keep inputs away from kinks (|x| > 0.05) so central differences are exact enough.
    Tensor away = ops::binary(ops::Binary::add, ops::mul_scalar(ops::unary(ops::Unary::sign, x), 0.1), x).detach();
    away.set_requires_grad();
    using F = std::function<Tensor(const Tensor&)>;
    for (auto [name, fn, input] : std::vector<std::tuple<const char*, F, Tensor>>{
             {"neg", [](const Tensor& t) { return -t; }, x},
             {"exp", [](const Tensor& t) { return exp(t); }, x},
             {"log", [](const Tensor& t) { return log(t); }, pos},
             {"sqrt", [](const Tensor& t) { return sqrt(t); }, pos},
             {"abs", [](const Tensor& t) { return abs(t); }, away},
             {"sign", [](const Tensor& t) { return sign(t) * t; }, away},
             {"square", [](const Tensor& t) { return square(t); }, x},
             {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.5); }, away},
             {"relu", [](const Tensor& t) { return relu(t); }, away},
             {"sigmoid", [](const Tensor& t) { return sigmoid(t); }, x},
             {"silu", [](const Tensor& t) { return silu(t); }, x},
             {"tanh", [](const Tensor& t) { return tanh(t); }, x}}) {
      CAPTURE(name);
      F f = fn;
      TETHER_GRADCHECK([f](auto& in) { return f(in[0]); }, std::vector<Tensor>{input});
    }
  }

  TEST_CASE("reductions") {
    Tensor x = randn({3, 4, 5}, 6, DType::f64, true);
    TETHER_GRADCHECK([](auto& in) { return sum(in[0]); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return sum(in[0], {0, 2}); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return mean(in[0], {1}, true); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return mean(in[0]); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return amax(in[0], 1); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return amax(in[0], -1, true); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return norm(in[0]); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return squared_norm(in[0]); }, std::vector<Tensor>{x});
    const Tensor c = randn({3, 4, 5}, 16, DType::f64);
    TETHER_GRADCHECK([c](auto& in) { return squared_distance(in[0], c); }, std::vector<Tensor>{x});
    // The value, against a direct sum.
    const auto xv = x.to_vector<double>(), cv = c.to_vector<double>();
    double want = 0;
    for (size_t i = 0; i < xv.size(); ++i) want += (xv[i] - cv[i]) * (xv[i] - cv[i]);
    CHECK(squared_distance(x, c).item<double>() == doctest::Approx(want).epsilon(1e-14));
  }

  TEST_CASE("views and cat") {
    Tensor x = randn({2, 3, 4}, 7, DType::f64, true);
    Tensor y = randn({2, 2, 4}, 8, DType::f64, true);
    TETHER_GRADCHECK([](auto& in) { return reshape(in[0], {6, 4}); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return permute(in[0], {2, 0, 1}) * 1.5; }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return contiguous(transpose(in[0], 0, 2)); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return narrow(in[0], 1, 1, 2); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return select(in[0], 2, -1); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return flatten(in[0], 1); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return squeeze(unsqueeze(in[0], 1), 1); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return expand(narrow(in[0], 1, 0, 1), {5, 2, 3, 4}); }, std::vector<Tensor>{x});
    TETHER_GRADCHECK([](auto& in) { return cat({in[0], in[1]}, 1); }, std::vector<Tensor>{x, y});
  }
}
