// The backward engine: accumulation, shared inputs, functional grad, retain_graph, no-grad.
#include "tests/test_util.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"

using namespace tether;
using namespace tether::testing;

namespace {
// rep = x w as a sum of broadcast products (keeps this file independent of matmul).
Tensor matmul_free_rep(const Tensor& x, const Tensor& w) {
  return sum(unsqueeze(x, 2) * unsqueeze(w, 0), {1});  // [2,3,1] * [1,3,4] -> sum over 3
}
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("backward accumulates into leaves; a tensor feeding several ops sums its gradients") {
    Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
    Tensor y = sum(x * x + x * 3.0);  // dy/dx = 2x + 3
    y.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
    sum(x).backward();  // gradients accumulate; the caller zeroes
    CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 8, 10});
    x.zero_grad();
    CHECK(!x.grad().defined());
  }

  TEST_CASE("functional grad for leaves and intermediate activations, without touching .grad") {
    Tensor w = Tensor::from_vector<double>({2, -1}, {2}).set_requires_grad();
    Tensor h = w * w;          // intermediate
    Tensor j = sum(h * 3.0);   // dJ/dh = 3, dJ/dw = 6w
    Tensor o = sum(h);         // dO/dh = 1
    auto g = grad({j}, {w, h}, {}, /*retain_graph=*/true);
    CHECK(g[0].to_vector<double>() == std::vector<double>{12, -6});
    CHECK(g[1].to_vector<double>() == std::vector<double>{3, 3});
    CHECK(!w.grad().defined());
    auto g2 = grad({o}, {w});  // a second gradient on the same graph (retained above)
    CHECK(g2[0].to_vector<double>() == std::vector<double>{4, -2});
    // The graph of o was freed: another backward through it is an error.
    CHECK_THROWS_WITH_AS(o.backward(), doctest::Contains("a second time"), Error);
  }

  TEST_CASE("unused inputs, constants and errors") {
    Tensor a = Tensor::ones({2}, DType::f64).set_requires_grad();
    Tensor b = Tensor::ones({2}, DType::f64).set_requires_grad();
    Tensor c = Tensor::ones({2}, DType::f64);  // constant
    Tensor y = sum(a * c);
    auto g = grad({y}, {a, b}, {}, true);
    CHECK(g[0].defined());
    CHECK(!g[1].defined());
    CHECK_THROWS_WITH_AS(grad({y}, {a, b}, {}, true, /*allow_unused=*/false), doctest::Contains("not used"), Error);
    CHECK_THROWS_WITH_AS(grad({y}, {c}), doctest::Contains("does not require grad"), Error);
    CHECK_THROWS_WITH_AS((a * 2.0).backward(), doctest::Contains("non-scalar"), Error);
    CHECK_THROWS_AS(sum(c).backward(), Error);
  }

  TEST_CASE("NoGradGuard and detach stop recording") {
    Tensor x = Tensor::ones({2}, DType::f64).set_requires_grad();
    {
      NoGradGuard guard;
      Tensor y = x * 2.0;
      CHECK(!y.requires_grad());
      CHECK(!GradMode::enabled());
    }
    CHECK(GradMode::enabled());
    Tensor d = (x * 2.0).detach();
    CHECK(!d.requires_grad());
    CHECK(d.is_leaf());
    CHECK((x * 2.0).grad_fn() != nullptr);
  }

  TEST_CASE("graphs are freed: no reference cycle keeps saved outputs alive") {
    std::weak_ptr<Storage> storage;
    {
      Tensor x = randn({100}, 1, DType::f64, true);
      Tensor y = exp(x);  // ExpBackward saves y
      storage = y.storage();
      Tensor s = sum(y);
      s.backward();
    }
    CHECK(storage.expired());
  }

  TEST_CASE("backward with a given output gradient and broadcasting") {
    Tensor a = randn({3, 1}, 2, DType::f64, true);
    Tensor b = randn({4}, 3, DType::f64, true);
    Tensor y = a * b;  // [3, 4]
    y.backward(Tensor::ones({3, 4}, DType::f64));
    // d/da sum_j a_i b_j = sum_j b_j
    const double sb = ops::sum_all(b);
    for (double v : a.grad().to_vector<double>()) CHECK(v == doctest::Approx(sb));
    CHECK(a.grad().shape() == Shape{3, 1});
    CHECK(b.grad().shape() == Shape{4});
  }
}

TEST_SUITE("autograd") {
  TEST_CASE("PtR pattern: gradient at an activation, then a full backward on the same graph") {
    Tensor w = randn({3, 4}, 11, DType::f64, true);
    Tensor x = randn({2, 3}, 12, DType::f64);
    Tensor rep = matmul_free_rep(x, w);
    Tensor j = sum(square(rep));
    Tensor g_rep = grad({j}, {rep}, {}, /*retain_graph=*/true)[0];
    // dJ/drep = 2 rep
    CHECK(testing::close_ratio(g_rep, ops::mul_scalar(rep, 2.0), 1e-12, 1e-12) <= 1.0);
    // w is a constant in the weighted loss (no gradient through the weight itself).
    const double weight = ops::norm(g_rep, 2.0);
    Tensor total = j + sum(rep) * weight;
    total.backward();
    CHECK(w.grad().defined());
    CHECK(!rep.grad().defined());  // non-leaves do not accumulate .grad
  }
}
