// Evaluation metrics (tools/train/evaluate.cpp) against values worked out by hand.
#include <cmath>

#include "tests/test_util.h"
#include "tools/train/evaluate.h"

using namespace tether;

namespace {
Tensor logits_of(const std::vector<float>& v, int64_t rows, int64_t k) { return Tensor::from_vector(v, {rows, k}); }
Tensor labels_of(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }
}  // namespace

TEST_SUITE("train") {
  TEST_CASE("Metrics: top-1, top-5, mean per-class accuracy, loss and entropy on a worked example") {
    // 6 classes, 3 samples. Sample 0 (label 0): correct. Sample 1 (label 1): ranked 2nd.
    // Sample 2 (label 2): ranked last (6th) → top-5 miss.
    const float L = std::log(2.0f);
    const std::vector<float> z{
        L, 0, 0, 0, 0, 0,       // p = (2, 1, 1, 1, 1, 1) / 7
        0, 1, 2, 0, 0, 0,       // label 1 second
        1, 1, 0, 1, 1, 1,       // label 2 below five others
    };
    train::Metrics m(6);
    m.add(logits_of(z, 3, 6), labels_of({0, 1, 2}), 1);
    const train::EvalResult r = m.result();
    CHECK(r.samples == 3);
    CHECK(r.top1 == doctest::Approx(1.0 / 3));
    CHECK(r.top5 == doctest::Approx(2.0 / 3));
    // Classes 0, 1, 2 are present with accuracies 1, 0, 0.
    CHECK(r.mean_class_accuracy == doctest::Approx(1.0 / 3));
    // loss = mean −log softmax(z)[y], computed independently here.
    double loss = 0, entropy = 0;
    for (int i = 0; i < 3; ++i) {
      double total = 0;
      for (int c = 0; c < 6; ++c) total += std::exp(z[i * 6 + c]);
      const int y = i;
      loss += -(z[i * 6 + y] - std::log(total)) / 3;
      for (int c = 0; c < 6; ++c) {
        const double p = std::exp(z[i * 6 + c]) / total;
        entropy += -p * std::log2(p) / 3;
      }
    }
    CHECK(r.loss == doctest::Approx(loss).epsilon(1e-6));
    CHECK(r.entropy_bits == doctest::Approx(entropy).epsilon(1e-6));
  }

  TEST_CASE("Metrics: ten-crop averages probabilities, not logits, over a sample's views") {
    // One sample, 2 classes, 2 views: view A is confident in class 0, view B mildly in class 1.
    // Averaged logits would pick class 0 by (4 - 0.5)... averaged probabilities must be used.
    const std::vector<float> z{0.0f, 3.0f,  // view A: p1 = 0.953
                               2.0f, 0.0f}; // view B: p0 = 0.881
    train::Metrics m(2);
    std::vector<std::vector<double>> probs;
    m.add(logits_of(z, 2, 2), labels_of({0}), 2, &probs);
    const double pa1 = 1 / (1 + std::exp(-3.0)), pb1 = 1 / (1 + std::exp(2.0));
    const double p1 = (pa1 + pb1) / 2;
    REQUIRE(probs.size() == 1);
    CHECK(probs[0][1] == doctest::Approx(p1));
    CHECK(m.result().top1 == (p1 > 0.5 ? 0.0 : 1.0));
    CHECK(m.result().loss == doctest::Approx(-std::log(1 - p1)));
  }

  TEST_CASE("Metrics: a tie counts for the lower class index, mean per-class ignores absent classes") {
    train::Metrics m(3);
    m.add(logits_of({1, 1, 0, 0, 1, 1}, 2, 3), labels_of({0, 2}), 1);
    const auto r = m.result();
    CHECK(r.top1 == doctest::Approx(0.5));  // sample 0: tie with class 1, label 0 wins; sample 1: class 1 wins
    CHECK(r.mean_class_accuracy == doctest::Approx(0.5));  // classes 0 (1.0) and 2 (0.0); class 1 absent
  }

  TEST_CASE("Metrics: mismatched shapes and labels out of range are errors") {
    train::Metrics m(3);
    CHECK_THROWS_WITH_AS(m.add(logits_of({1, 2, 3}, 1, 3), labels_of({0, 1}), 1), doctest::Contains("do not match"),
                         Error);
    CHECK_THROWS_WITH_AS(m.add(logits_of({1, 2, 3}, 1, 3), labels_of({3}), 1), doctest::Contains("out of range"),
                         Error);
  }
}
