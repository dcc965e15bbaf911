// Float64 finite-difference checks of matmul (every NumPy shape kind), linear (with and
// without bias) and conv2d (stride, padding, dilation, groups, depthwise, bias or not).
#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

namespace {

ops::Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t dil, int64_t groups) {
  ops::Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {pad, pad};
  p.dilation = {dil, dil};
  p.groups = groups;
  return p;
}

}  // namespace

TEST_SUITE("gradcheck") {
  TEST_CASE("matmul: vector, matrix, batched and broadcast shapes") {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{4}, {4}},             // dot
        {{4}, {4, 3}},          // vector x matrix
        {{3, 4}, {4}},          // matrix x vector
        {{3, 4}, {4, 2}},       // matrix x matrix
        {{2, 3, 4}, {4, 2}},    // batch x shared matrix
        {{2, 3, 4}, {2, 4, 2}}, // batched
        {{2, 1, 3, 4}, {3, 4, 2}},  // broadcast batch dims
        {{3, 4}, {2, 4, 2}},    // shared left operand
        {{4}, {2, 4, 3}},       // vector x batch
        {{2, 3, 4}, {4}},       // batch x vector
    };
    uint64_t seed = 1;
    for (const auto& [sa, sb] : shapes) {
      CAPTURE(shape_str(sa));
      CAPTURE(shape_str(sb));
      Tensor a = randn(sa, seed++, DType::f64, true), b = randn(sb, seed++, DType::f64, true);
      TETHER_GRADCHECK([](auto& in) { return matmul(in[0], in[1]); }, std::vector<Tensor>{a, b});
    }
    // Only one operand requiring grad; a transposed (non-contiguous) operand.
    Tensor a = randn({3, 4}, 50, DType::f64, true), c = randn({4, 2}, 51);
    TETHER_GRADCHECK([c](auto& in) { return matmul(in[0], c); }, std::vector<Tensor>{a});
    TETHER_GRADCHECK([c](auto& in) { return matmul(transpose(c, 0, 1), transpose(in[0], 0, 1)); }, std::vector<Tensor>{a});
  }

  TEST_CASE("linear: with and without bias, 1-D to 3-D input") {
    Tensor w = randn({3, 4}, 10, DType::f64, true), b = randn({3}, 11, DType::f64, true);
    for (const Shape& xs : {Shape{4}, Shape{5, 4}, Shape{2, 3, 4}}) {
      CAPTURE(shape_str(xs));
      Tensor x = randn(xs, 12, DType::f64, true);
      TETHER_GRADCHECK([](auto& in) { return linear(in[0], in[1], in[2]); }, std::vector<Tensor>{x, w, b});
      TETHER_GRADCHECK([](auto& in) { return linear(in[0], in[1]); }, std::vector<Tensor>{x, w});
    }
    // Weight only (a frozen input), input only (a frozen layer).
    Tensor x = randn({5, 4}, 13);
    TETHER_GRADCHECK([x](auto& in) { return linear(x, in[0], in[1]); }, std::vector<Tensor>{w, b});
    Tensor wf = randn({3, 4}, 14);
    Tensor xg = randn({5, 4}, 15, DType::f64, true);
    TETHER_GRADCHECK([wf](auto& in) { return linear(in[0], wf); }, std::vector<Tensor>{xg});
  }

  TEST_CASE("conv2d: stride, padding, dilation, groups, depthwise, bias") {
    struct Case {
      const char* name;
      Shape x, w;
      ops::Conv2dParams p;
      bool bias;
    };
    const std::vector<Case> cases = {
        {"3x3 pad 1", {2, 2, 5, 5}, {3, 2, 3, 3}, conv_params(1, 1, 1, 1), true},
        {"3x3 stride 2 no bias", {1, 2, 6, 5}, {2, 2, 3, 3}, conv_params(2, 1, 1, 1), false},
        {"2x3 no padding", {2, 1, 5, 6}, {2, 1, 2, 3}, conv_params(1, 0, 1, 1), true},
        {"dilation 2", {1, 2, 7, 7}, {2, 2, 3, 3}, conv_params(1, 2, 2, 1), true},
        {"groups 2", {2, 4, 5, 5}, {4, 2, 3, 3}, conv_params(1, 1, 1, 2), true},
        {"depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, conv_params(1, 1, 1, 3), false},
        {"depthwise x2 stride 2", {1, 2, 6, 6}, {4, 1, 3, 3}, conv_params(2, 1, 1, 2), true},
        {"1x1", {2, 3, 4, 4}, {2, 3, 1, 1}, conv_params(1, 0, 1, 1), true},
        {"1x1 stride 2", {1, 3, 5, 5}, {2, 3, 1, 1}, conv_params(2, 0, 1, 1), false},
    };
    uint64_t seed = 20;
    for (const Case& c : cases) {
      CAPTURE(c.name);
      Tensor x = randn(c.x, seed++, DType::f64, true), w = randn(c.w, seed++, DType::f64, true);
      const ops::Conv2dParams p = c.p;
      if (c.bias) {
        Tensor b = randn({c.w[0]}, seed++, DType::f64, true);
        TETHER_GRADCHECK([p](auto& in) { return conv2d(in[0], in[1], in[2], p); }, std::vector<Tensor>{x, w, b});
      } else {
        TETHER_GRADCHECK([p](auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, std::vector<Tensor>{x, w});
      }
    }
    // Gradient for the weight only, and for the input only.
    Tensor x = randn({1, 2, 5, 5}, 40), w = randn({2, 2, 3, 3}, 41);
    Tensor xg = randn({1, 2, 5, 5}, 42, DType::f64, true), wg = randn({2, 2, 3, 3}, 43, DType::f64, true);
    const ops::Conv2dParams p = conv_params(1, 1, 1, 1);
    TETHER_GRADCHECK([x, p](auto& in) { return conv2d(x, in[0], Tensor(), p); }, std::vector<Tensor>{wg});
    TETHER_GRADCHECK([w, p](auto& in) { return conv2d(in[0], w, Tensor(), p); }, std::vector<Tensor>{xg});
  }
}
