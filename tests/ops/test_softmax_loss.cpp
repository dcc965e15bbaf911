// softmax / log_softmax / cross-entropy kernels against naive long-double loops, dropout
// statistics and determinism, and the torch.nn.init formulas (fans, gains, bounds, stds).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/init.h"
#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

namespace {

// Offsets of the slices along `dim`: calls fn(first element offset, stride along dim) once
// per slice of a contiguous tensor of shape `shape`.
template <typename Fn>
void for_each_slice(const Shape& shape, int dim, Fn fn) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < inner; ++c) fn(o * shape[dim] * inner + c, inner);
}

// Naive (long double) softmax or log_softmax of x along dim, as an f64 tensor.
Tensor naive_softmax(const Tensor& x, int dim, bool log) {
  dim = x.wrap_dim(dim);
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  const int64_t len = x.size(dim);
  for_each_slice(x.shape(), dim, [&](int64_t base, int64_t step) {
    long double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < len; ++j) m = std::max<long double>(m, v[base + j * step]);
    for (int64_t j = 0; j < len; ++j) s += std::exp(static_cast<long double>(v[base + j * step]) - m);
    for (int64_t j = 0; j < len; ++j) {
      const long double z = static_cast<long double>(v[base + j * step]) - m;
      out[base + j * step] = static_cast<double>(log ? z - std::log(s) : std::exp(z) / s);
    }
  });
  return Tensor::from_vector(out, x.shape());
}

// Naive gradients: softmax gx = y (gy - <gy, y>), log_softmax gx = gy - exp(y) sum(gy).
Tensor naive_softmax_backward(const Tensor& gy_t, const Tensor& y_t, int dim, bool log) {
  dim = y_t.wrap_dim(dim);
  std::vector<double> gy = gy_t.to_vector<double>(), y = y_t.to_vector<double>(), out(y.size());
  const int64_t len = y_t.size(dim);
  for_each_slice(y_t.shape(), dim, [&](int64_t base, int64_t step) {
    long double d = 0;
    for (int64_t j = 0; j < len; ++j)
      d += log ? gy[base + j * step] : static_cast<long double>(gy[base + j * step]) * y[base + j * step];
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = base + j * step;
      out[i] = static_cast<double>(log ? gy[i] - std::exp(static_cast<long double>(y[i])) * d : y[i] * (gy[i] - d));
    }
  });
  return Tensor::from_vector(out, y_t.shape());
}

// Naive label-smoothed cross-entropy per sample (long double).
std::vector<double> naive_ce_rows(const Tensor& logits, const std::vector<int64_t>& target, double s) {
  const int64_t n = logits.size(0), k = logits.size(1);
  std::vector<double> x = logits.to_vector<double>(), loss(n);
  for (int64_t i = 0; i < n; ++i) {
    long double m = -INFINITY, sum = 0;
    for (int64_t j = 0; j < k; ++j) m = std::max<long double>(m, x[i * k + j]);
    for (int64_t j = 0; j < k; ++j) sum += std::exp(x[i * k + j] - m);
    const long double lse = m + std::log(sum);
    long double smooth = 0;
    for (int64_t j = 0; j < k; ++j) smooth += lse - x[i * k + j];
    loss[i] = static_cast<double>((1 - s) * (lse - x[i * k + target[i]]) + s / k * smooth);
  }
  return loss;
}

Tensor scalar_like(double v, DType dtype) { return Tensor::scalar(v, dtype); }

const char* reduction_name(Reduction r) {
  return r == Reduction::none ? "none" : r == Reduction::mean ? "mean" : "sum";
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

// Sample mean and standard deviation of all elements.
std::pair<double, double> mean_std(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / (v.size() - 1))};
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("softmax and log_softmax match a naive f64 softmax on first, middle and last dims") {
    // {2, 3, 70} along dim 1 has 70 > 64 columns (two column blocks); {4, 50, 300} is large
    // enough for the parallel paths.
    for (const Shape& shape : {Shape{3, 4, 5}, Shape{2, 3, 70}, Shape{4, 50, 300}, Shape{7}})
      for (int dim = -1; dim < static_cast<int>(shape.size()); ++dim)
        for (DType dtype : {DType::f32, DType::f64})
          for (bool log : {false, true}) {
            CAPTURE(shape_str(shape));
            CAPTURE(dim);
            CAPTURE(log);
            CAPTURE(dtype_name(dtype));
            Tensor x = randn(shape, 11, dtype);
            ops::scale_(x, 3.0);
            Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
            CHECK(y.dtype() == dtype);
            const double tol = dtype == DType::f32 ? 2e-6 : 1e-13;
            TETHER_CHECK_CLOSE(y, naive_softmax(x, dim, log), tol, tol);
          }
  }

  TEST_CASE("softmax of a strided view equals softmax of its contiguous copy") {
    Tensor x = randn({5, 6, 7}, 12);
    Tensor xt = ops::transpose(x, 0, 2);  // [7, 6, 5], not contiguous
    REQUIRE(!xt.is_contiguous());
    for (int dim : {0, 1, 2}) {
      TETHER_CHECK_CLOSE(ops::softmax(xt, dim), naive_softmax(ops::contiguous(xt), dim, false), 1e-13, 1e-13);
      TETHER_CHECK_CLOSE(ops::log_softmax(xt, dim), naive_softmax(ops::contiguous(xt), dim, true), 1e-13, 1e-13);
    }
  }

  TEST_CASE("softmax is stable for huge logits") {
    // exp(1e4) overflows f32 and f64: only max subtraction gives finite results.
    std::vector<float> v = {1e4f, 1e4f - 1.0f, -1e4f, 0.0f, 1e4f - 3.0f, 1e4f};
    for (DType dtype : {DType::f32, DType::f64}) {
      Tensor x = Tensor::from_vector(v, {2, 3}).to(dtype);
      for (int dim : {0, 1}) {
        Tensor p = ops::softmax(x, dim), lp = ops::log_softmax(x, dim);
        for (double e : p.to_vector<double>()) CHECK(std::isfinite(e));
        for (double e : lp.to_vector<double>()) CHECK(std::isfinite(e));
        TETHER_CHECK_CLOSE(p, naive_softmax(x, dim, false), 1e-6, 1e-7);
        TETHER_CHECK_CLOSE(lp, naive_softmax(x, dim, true), 1e-6, 1e-6);
      }
    }
    // A row of equal huge values is uniform.
    Tensor same = Tensor::full({1, 4}, -1e4, DType::f32);
    TETHER_CHECK_CLOSE(ops::softmax(same, 1), Tensor::full({1, 4}, 0.25, DType::f64), 1e-7, 0);
  }

  TEST_CASE("softmax and cross-entropy with -inf and NaN logits behave as PyTorch") {
    // Masked (-inf) logits get probability 0 on both code paths (row and column).
    Tensor x = Tensor::from_vector(std::vector<float>{-INFINITY, 0.0f, 1.0f, -INFINITY}, {2, 2});
    CHECK(ops::softmax(x, 1).to_vector<float>() == std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f});
    CHECK(ops::softmax(x, 0).to_vector<float>() == std::vector<float>{0.0f, 1.0f, 1.0f, 0.0f});
    std::vector<float> lp = ops::log_softmax(x, 1).to_vector<float>();
    CHECK(lp[0] == -INFINITY);
    CHECK(lp[1] == 0.0f);
    // A NaN poisons its whole slice, and only it.
    Tensor n = Tensor::from_vector(std::vector<double>{1.0, NAN, 2.0, 1.0, 2.0, 3.0}, {2, 3});
    std::vector<double> p = ops::softmax(n, 1).to_vector<double>();
    for (int i = 0; i < 3; ++i) CHECK(std::isnan(p[i]));
    for (int i = 3; i < 6; ++i) CHECK(std::isfinite(p[i]));
    // Cross-entropy without smoothing ignores a -inf non-target logit; with smoothing its
    // -log p = inf enters the loss.
    Tensor logits = Tensor::from_vector(std::vector<double>{0.5, -INFINITY, 1.5}, {1, 3});
    Tensor target = Tensor::from_vector(std::vector<int64_t>{2}, {1});
    const double want = std::log(std::exp(0.5) + std::exp(1.5)) - 1.5;
    CHECK(ops::cross_entropy_forward(logits, target, 0.0, Reduction::mean, nullptr).item<double>() ==
          doctest::Approx(want));
    CHECK(ops::cross_entropy_forward(logits, target, 0.1, Reduction::mean, nullptr).item<double>() == INFINITY);
    CHECK(std::isnan(ops::cross_entropy_forward(n, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}), 0.0,
                                                Reduction::none, nullptr)
                         .to_vector<double>()[0]));
  }

  TEST_CASE("softmax argument errors") {
    Tensor x = randn({2, 3}, 13);
    CHECK_THROWS_WITH_AS(ops::softmax(x, 2), doctest::Contains("dimension 2 out of range"), Error);
    CHECK_THROWS_WITH_AS(ops::log_softmax(Tensor::zeros({3}, DType::i64), 0), doctest::Contains("floating"), Error);
    Tensor gx = Tensor::empty({3, 2}, DType::f64);
    CHECK_THROWS_WITH_AS(ops::softmax_backward(x, x, 1, gx, false), doctest::Contains("same shape"), Error);
  }

  TEST_CASE("softmax backward kernels overwrite or accumulate") {
    for (const Shape& shape : {Shape{3, 4, 5}, Shape{2, 80, 3}})
      for (int dim : {0, 1, 2})
        for (bool log : {false, true}) {
          CAPTURE(shape_str(shape));
          CAPTURE(dim);
          CAPTURE(log);
          Tensor x = randn(shape, 14);
          Tensor y = log ? ops::log_softmax(x, dim) : ops::softmax(x, dim);
          Tensor gy = randn(shape, 15);
          Tensor want = naive_softmax_backward(gy, y, dim, log);
          auto run = [&](const Tensor& gx, bool accumulate) {
            if (log) ops::log_softmax_backward(gy, y, dim, gx, accumulate);
            else ops::softmax_backward(gy, y, dim, gx, accumulate);
          };
          Tensor prior = randn(shape, 16);
          // accumulate = false overwrites whatever was there.
          Tensor gx = prior.clone();
          run(gx, false);
          TETHER_CHECK_CLOSE(gx, want, 1e-12, 1e-12);
          // accumulate = true adds to it.
          gx = prior.clone();
          run(gx, true);
          TETHER_CHECK_CLOSE(gx, ops::binary(ops::Binary::add, prior, want), 1e-12, 1e-12);
          // A strided grad_x (a transposed view of a contiguous buffer), both ways.
          Shape tshape = shape;
          std::swap(tshape[0], tshape[2]);
          Tensor buf = ops::contiguous(ops::transpose(prior, 0, 2));  // [s2, s1, s0]
          Tensor view = ops::transpose(buf, 0, 2);                    // shape, strided
          REQUIRE(!view.is_contiguous());
          run(view, true);
          TETHER_CHECK_CLOSE(ops::contiguous(view), ops::binary(ops::Binary::add, prior, want), 1e-12, 1e-12);
          run(view, false);
          TETHER_CHECK_CLOSE(ops::contiguous(view), want, 1e-12, 1e-12);
        }
  }

  TEST_CASE("cross-entropy matches a naive computation for every reduction and smoothing") {
    const int64_t n = 6, k = 5;
    const std::vector<int64_t> labels = {0, 4, 2, 2, 1, 3};
    Tensor target = Tensor::from_vector(labels, {n});
    for (DType dtype : {DType::f32, DType::f64})
      for (double s : {0.0, 0.1, 0.5, 1.0})
        for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(s);
          CAPTURE(reduction_name(red));
          Tensor logits = randn({n, k}, 21, dtype);
          ops::scale_(logits, 2.0);
          Tensor log_probs;
          Tensor loss = ops::cross_entropy_forward(logits, target, s, red, &log_probs);
          CHECK(loss.dtype() == dtype);
          const double tol = dtype == DType::f32 ? 2e-6 : 1e-13;
          TETHER_CHECK_CLOSE(log_probs, naive_softmax(logits, 1, true), tol, tol);
          std::vector<double> rows = naive_ce_rows(logits, labels, s);
          const double total = std::accumulate(rows.begin(), rows.end(), 0.0);
          if (red == Reduction::none) {
            TETHER_CHECK_CLOSE(loss, Tensor::from_vector(rows, {n}), tol, tol);
          } else {
            CHECK(loss.dim() == 0);
            const double want = red == Reduction::mean ? total / n : total;
            CHECK(loss.item<double>() == doctest::Approx(want).epsilon(tol));
          }

          // Backward: (softmax - ((1-s) onehot + s/K)) * scale.
          Tensor g = red == Reduction::none ? randn({n}, 22, dtype) : scalar_like(0.7, dtype);
          std::vector<double> gv = g.to_vector<double>(), p = ops::softmax(logits, 1).to_vector<double>();
          std::vector<double> want(n * k);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < k; ++j) {
              const double scale = red == Reduction::none ? gv[i] : red == Reduction::mean ? gv[0] / n : gv[0];
              want[i * k + j] = (p[i * k + j] - ((1 - s) * (j == labels[i]) + s / k)) * scale;
            }
          Tensor want_t = Tensor::from_vector(want, {n, k});
          Tensor prior = randn({n, k}, 23, dtype);
          Tensor gx = prior.clone();
          ops::cross_entropy_backward(g, log_probs, target, s, red, gx, false);
          TETHER_CHECK_CLOSE(gx, want_t, 1e-5, 1e-6);
          gx = prior.clone();
          ops::cross_entropy_backward(g, log_probs, target, s, red, gx, true);
          TETHER_CHECK_CLOSE(gx, ops::binary(ops::Binary::add, prior.to(DType::f64), want_t), 1e-5, 1e-6);
        }
  }

  TEST_CASE("cross-entropy is stable for huge logits and accepts strided logits") {
    Tensor logits = Tensor::from_vector(std::vector<double>{1e4, -1e4, 0, 5e3, 1e4 - 2, 1e4}, {2, 3});
    Tensor target = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
    Tensor loss = ops::cross_entropy_forward(logits.to(DType::f32), target, 0.1, Reduction::none, nullptr);
    std::vector<double> want = naive_ce_rows(logits, {1, 0}, 0.1);
    TETHER_CHECK_CLOSE(loss, Tensor::from_vector(want, {2}), 1e-6, 1e-3);

    Tensor wide = randn({7, 4}, 24);
    Tensor t = Tensor::from_vector(std::vector<int64_t>{1, 3, 0, 2}, {4});
    Tensor strided = ops::transpose(wide, 0, 1);  // [4, 7] view
    Tensor got = ops::cross_entropy_forward(strided, t, 0.2, Reduction::none, nullptr);
    TETHER_CHECK_CLOSE(got, Tensor::from_vector(naive_ce_rows(ops::contiguous(strided), {1, 3, 0, 2}, 0.2), {4}),
                       1e-13, 1e-13);
  }

  TEST_CASE("cross-entropy rejects out-of-range targets, naming the index and value") {
    Tensor logits = randn({3, 4}, 25);
    Tensor too_big = Tensor::from_vector(std::vector<int64_t>{0, 1, 4}, {3});
    Tensor negative = Tensor::from_vector(std::vector<int64_t>{-1, 1, 2}, {3});
    CHECK_THROWS_WITH_AS(ops::cross_entropy_forward(logits, too_big, 0.0, Reduction::mean, nullptr),
                         doctest::Contains("target[2] = 4 is out of range [0, 4)"), Error);
    CHECK_THROWS_WITH_AS(ops::cross_entropy_forward(logits, negative, 0.0, Reduction::sum, nullptr),
                         doctest::Contains("target[0] = -1"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, too_big), doctest::Contains("target[2] = 4"), Error);
    // Argument checks of the op front.
    CHECK_THROWS_AS(ops::cross_entropy_forward(logits, Tensor::zeros({3}), 0.0, Reduction::mean, nullptr), Error);
    CHECK_THROWS_AS(ops::cross_entropy_forward(logits, negative, 1.5, Reduction::mean, nullptr), Error);
    Tensor lp = ops::log_softmax(logits, 1), gx = Tensor::empty({3, 4}, DType::f64);
    CHECK_THROWS_WITH_AS(ops::cross_entropy_backward(Tensor::scalar(1.0, DType::f64), lp, too_big, 0.0,
                                                     Reduction::mean, gx, false),
                         doctest::Contains("target[2] = 4"), Error);
    CHECK_THROWS_WITH_AS(ops::cross_entropy_backward(Tensor::scalar(1.0, DType::f64), lp,
                                                     Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3}), 0.0,
                                                     Reduction::none, gx, false),
                         doctest::Contains("reduction none needs grad_loss [3]"), Error);
  }

  TEST_CASE("dropout: keep rate, scale, eval identity, seeding") {
    const int64_t n = 200000;
    Tensor x = Tensor::ones({n}, DType::f32);
    for (double p : {0.1, 0.5, 0.8}) {
      CAPTURE(p);
      Generator gen(7);
      Tensor y = dropout(x, p, /*training=*/true, gen);
      std::vector<float> v = y.to_vector<float>();
      const float scale = static_cast<float>(1.0 / (1.0 - p));
      int64_t kept = 0;
      bool values_ok = true;
      for (float e : v) {
        if (e != 0.0f) ++kept;
        values_ok &= e == 0.0f || e == scale;
      }
      CHECK(values_ok);
      // Binomial(n, 1-p): 5 standard deviations are < 0.006 here.
      const double rate = static_cast<double>(kept) / n;
      CHECK(std::abs(rate - (1.0 - p)) < 5 * std::sqrt(p * (1 - p) / n));
      CHECK(std::abs(ops::sum_all(y) / n - 1.0) < 0.02);  // E[y] = x
    }
    Generator gen(7);
    CHECK(dropout(x, 0.5, /*training=*/false, gen).same(x));
    CHECK(dropout(x, 0.0, /*training=*/true, gen).same(x));
    CHECK(gen.offset() == 0);  // neither drew random numbers
    CHECK(ops::sum_all(dropout(x, 1.0, true, gen)) == 0.0);
    CHECK_THROWS_WITH_AS(dropout(x, 1.5, true, gen), doctest::Contains("outside [0, 1]"), Error);
    CHECK_THROWS_AS(dropout(x, -0.1, true, gen), Error);

    Tensor small = Tensor::ones({1000}, DType::f32);
    Generator a(42), b(42), c(43);
    const std::vector<float> ma = dropout(small, 0.5, true, a).to_vector<float>();
    CHECK(ma == dropout(small, 0.5, true, b).to_vector<float>());
    CHECK(ma != dropout(small, 0.5, true, c).to_vector<float>());
    CHECK(ma != dropout(small, 0.5, true, a).to_vector<float>());  // the generator advanced
  }

  TEST_CASE("dropout backward multiplies by the same mask") {
    Tensor x = randn({50, 40}, 31, DType::f64, true);
    Generator gen(5);
    Tensor y = dropout(x, 0.3, true, gen);
    Tensor gy = randn({50, 40}, 32);
    y.backward(gy);
    // mask = y / x where x != 0 (randn is never exactly 0 here).
    std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>(), gv = gy.to_vector<double>(),
                        gx = x.grad().to_vector<double>();
    for (size_t i = 0; i < xv.size(); ++i) CHECK(gx[i] == doctest::Approx(gv[i] * yv[i] / xv[i]).epsilon(1e-12));
  }

  TEST_CASE("init: fans and gains follow torch.nn.init") {
    init::Fans conv = init::calculate_fan_in_and_fan_out(Shape{64, 3, 7, 7});
    CHECK(conv.fan_in == 3 * 49);
    CHECK(conv.fan_out == 64 * 49);
    init::Fans lin = init::calculate_fan_in_and_fan_out(Tensor::empty({10, 20}));
    CHECK(lin.fan_in == 20);
    CHECK(lin.fan_out == 10);
    init::Fans grouped = init::calculate_fan_in_and_fan_out(Shape{32, 4, 3, 3});  // groups: in/groups = 4
    CHECK(grouped.fan_in == 36);
    CHECK(grouped.fan_out == 288);
    CHECK_THROWS_WITH_AS(init::calculate_fan_in_and_fan_out(Shape{5}), doctest::Contains("fewer than 2"), Error);

    CHECK(init::calculate_gain(init::Nonlinearity::linear) == 1.0);
    CHECK(init::calculate_gain(init::Nonlinearity::sigmoid) == 1.0);
    CHECK(init::calculate_gain(init::Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0));
    CHECK(init::calculate_gain(init::Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)));
    CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu) == doctest::Approx(std::sqrt(2.0 / (1 + 1e-4))));
    CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu, 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
    CHECK(init::calculate_gain(init::Nonlinearity::selu) == 0.75);
    CHECK(init::parse_nonlinearity("conv2d") == init::Nonlinearity::conv);
    CHECK(init::parse_nonlinearity("leaky_relu") == init::Nonlinearity::leaky_relu);
    CHECK_THROWS_WITH_AS(init::parse_nonlinearity("gelu"), doctest::Contains("unsupported nonlinearity 'gelu'"), Error);
  }

  TEST_CASE("init: uniform bounds are exactly torch's formulas") {
    Generator gen(3);
    // Default conv init: kaiming_uniform_(a = sqrt(5)) -> bound = gain sqrt(3 / fan_in) with
    // gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in); the bias has the same bound.
    Tensor w = Tensor::empty({64, 16, 3, 3}), b = Tensor::empty({64});
    init::default_conv_linear_init_(w, b, gen);
    const double fan_in = 16 * 9, bound = std::sqrt(2.0 / 6.0) * std::sqrt(3.0 / fan_in);
    CHECK(bound == doctest::Approx(1.0 / std::sqrt(fan_in)));
    CHECK(max_abs(w) <= bound);
    CHECK(max_abs(w) > 0.99 * bound);
    CHECK(max_abs(b) <= bound);
    CHECK(max_abs(b) > 0.5 * bound);
    auto [wm, ws] = mean_std(w);
    CHECK(std::abs(wm) < 0.02 * bound);
    CHECK(ws == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));

    // Linear [out, in], no bias.
    Tensor lw = Tensor::empty({30, 50});
    init::default_conv_linear_init_(lw, Tensor(), gen);
    CHECK(max_abs(lw) <= 1.0 / std::sqrt(50.0));
    CHECK(max_abs(lw) > 0.95 / std::sqrt(50.0));

    // kaiming_uniform_ defaults (a = 0, fan_in, leaky_relu): bound sqrt(6 / fan_in).
    Tensor k = Tensor::empty({128, 64, 3, 3});
    init::kaiming_uniform_(k, gen);
    CHECK(max_abs(k) <= std::sqrt(6.0 / (64 * 9)));
    CHECK(max_abs(k) > 0.999 * std::sqrt(6.0 / (64 * 9)));
    // fan_out with relu: bound sqrt(2) sqrt(3 / fan_out).
    init::kaiming_uniform_(k, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu, gen);
    CHECK(max_abs(k) <= std::sqrt(6.0 / (128 * 9)));
    CHECK(max_abs(k) > 0.999 * std::sqrt(6.0 / (128 * 9)));

    // xavier_uniform_: gain sqrt(6 / (fan_in + fan_out)).
    Tensor xw = Tensor::empty({200, 300}, DType::f64);
    init::xavier_uniform_(xw, 2.0, gen);
    CHECK(max_abs(xw) <= 2.0 * std::sqrt(6.0 / 500));
    CHECK(max_abs(xw) > 0.999 * 2.0 * std::sqrt(6.0 / 500));
  }

  TEST_CASE("init: normal standard deviations within tolerance") {
    Generator gen(4);
    Tensor k = Tensor::empty({256, 64, 3, 3});  // 147456 samples: std error of the std ~0.2%
    init::kaiming_normal_(k, gen);
    auto [m1, s1] = mean_std(k);
    CHECK(std::abs(m1) < 0.01 * s1);
    CHECK(s1 == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.01));
    init::kaiming_normal_(k, 0.1, init::FanMode::fan_out, init::Nonlinearity::leaky_relu, gen);
    CHECK(mean_std(k).second == doctest::Approx(std::sqrt(2.0 / 1.01) / std::sqrt(256.0 * 9)).epsilon(0.01));
    init::xavier_normal_(k, gen);
    CHECK(mean_std(k).second == doctest::Approx(std::sqrt(2.0 / (64 * 9 + 256 * 9))).epsilon(0.01));
    init::normal_(k, 1.5, 0.25, gen);
    auto [m2, s2] = mean_std(k);
    CHECK(m2 == doctest::Approx(1.5).epsilon(0.005));
    CHECK(s2 == doctest::Approx(0.25).epsilon(0.01));

    // trunc_normal_: N(0, 1) on [-2, 2] has std sqrt(1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2))).
    Tensor t = Tensor::empty({100000}, DType::f64);
    init::trunc_normal_(t, 1.0, gen);
    std::vector<double> tv = t.to_vector<double>();
    CHECK(*std::min_element(tv.begin(), tv.end()) >= -2.0);
    CHECK(*std::max_element(tv.begin(), tv.end()) <= 2.0);
    const double phi2 = std::exp(-2.0) / std::sqrt(2 * M_PI), mass = std::erf(2.0 / std::sqrt(2.0));
    auto [tm, ts] = mean_std(t);
    CHECK(std::abs(tm) < 0.01);
    CHECK(ts == doctest::Approx(std::sqrt(1.0 - 4.0 * phi2 / mass)).epsilon(0.01));
    // A narrow window away from the mean: every value lands inside it.
    init::trunc_normal_(t, 3.0, 0.5, 3.2, 3.3, gen);
    tv = t.to_vector<double>();
    CHECK(*std::min_element(tv.begin(), tv.end()) >= 3.2);
    CHECK(*std::max_element(tv.begin(), tv.end()) <= 3.3);
    CHECK(mean_std(t).first == doctest::Approx(3.25).epsilon(0.005));
  }

  TEST_CASE("init: constants, strided views, zero-element tensors") {
    Generator gen(5);
    Tensor t = Tensor::empty({4, 6});
    init::constant_(t, 2.5);
    for (float v : t.to_vector<float>()) CHECK(v == 2.5f);
    init::zeros_(t);
    CHECK(ops::sum_all(t) == 0.0);
    init::ones_(t);
    CHECK(ops::sum_all(t) == 24.0);
    // A transposed view is filled through a temporary; the other half of the buffer is untouched.
    Tensor buf = Tensor::zeros({8, 6});
    Tensor half = ops::transpose(ops::narrow(buf, 0, 0, 4), 0, 1);  // [6, 4] strided
    init::kaiming_uniform_(half, gen);
    const double bound = std::sqrt(6.0 / 4);
    CHECK(max_abs(half) <= bound);
    CHECK(max_abs(half) > 0);
    CHECK(max_abs(ops::narrow(buf, 0, 4, 4)) == 0.0);
    // Zero-element tensors are a no-op (and draw nothing), as in PyTorch.
    const uint64_t before = gen.offset();
    init::kaiming_normal_(Tensor::empty({0, 3}), gen);
    CHECK(gen.offset() == before);
    CHECK_THROWS_AS(init::uniform_(Tensor::empty({3}, DType::i64), 0, 1, gen), Error);
  }
}
