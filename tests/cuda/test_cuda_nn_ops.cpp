// CPU-vs-CUDA differential tests of the networks' kernels (core/ops.h): GEMM and matmul
// (cuBLAS), conv2d forward and its three backward kernels (cuDNN), max/avg/adaptive pooling,
// batch norm (running statistics included), softmax/log_softmax and cross-entropy. Random
// configurations from seeded draws, f32 and f64, strided operands, every backward overwriting
// and accumulating into contiguous and strided outputs.
//
// GEMM and convolutions run in strict float32 (--tf32 none) against the CPU's float32; the
// TF32 test at the end holds them to 1e-2 with tensor-core rounding allowed. Tolerances are
// relative to each element plus the same fraction of the largest reference magnitude
// (expect_match); convolutions allow 1e-4 in float32, since cuDNN may choose Winograd or FFT
// algorithms whose float32 rounding is larger than a direct sum's.
#include "tests/cuda/cuda_test_util.h"

using namespace tether;
using namespace tether::cudatest;
using ops::Conv2dParams;
using ops::Pool2dParams;
using ops::Reduction;

namespace {

constexpr DType kFloat[] = {DType::f32, DType::f64};
constexpr double kConvTolF32 = 1e-4;

// `values` as a view into a wider buffer (leading stride cols + 3, odd offset) whose other
// elements are NaN: a GEMM that reads past a row poisons its result.
Laid padded_rows(const Tensor& values) {
  const int64_t r = values.size(0), c = values.size(1);
  Tensor buf = Tensor::full({r, c + 3}, kNaN, values.dtype());
  auto view = [c](const Tensor& b) { return ops::narrow(b, 1, 1, c); };
  view(buf).copy_(values);
  Laid l;
  l.buffer = pair_of(buf);
  l.view = map(l.buffer, view);
  return l;
}

// A 2-D operand stored row-major, with padded rows, or column-major.
enum class MatLayout { row_major, padded, column_major };
Laid mat_layout(const Tensor& values, MatLayout l) {
  switch (l) {
    case MatLayout::row_major: return lay_out(values, Layout::contiguous);
    case MatLayout::padded: return padded_rows(values);
    case MatLayout::column_major: return lay_out(values, Layout::transposed, kNaN);
  }
  return {};
}
const char* mat_layout_name(MatLayout l) {
  return l == MatLayout::row_major ? "row-major" : l == MatLayout::padded ? "padded rows" : "column-major";
}

// A random convolution whose output is not empty.
struct ConvDraw {
  Shape x, w;
  Conv2dParams p;
  std::string str() const {
    std::ostringstream os;
    os << "x " << shape_str(x) << " w " << shape_str(w) << " stride " << p.stride[0] << "," << p.stride[1] << " pad "
       << p.padding[0] << "," << p.padding[1] << " dilation " << p.dilation[0] << "," << p.dilation[1] << " groups "
       << p.groups;
    return os.str();
  }
};
ConvDraw draw_conv(Draw& draw) {
  for (;;) {
    ConvDraw c;
    const int64_t kind = draw(0, 3);  // dense, grouped, depthwise, depthwise with multiplier
    const int64_t groups = kind == 0 ? 1 : kind == 1 ? draw(2, 3) : draw(2, 6);
    const int64_t cg = kind >= 2 ? 1 : draw(1, 4), og = kind == 2 ? 1 : draw(1, 4);
    c.x = {draw(1, 3), groups * cg, draw(3, 12), draw(3, 12)};
    c.w = {groups * og, cg, draw(1, 4), draw(1, 3)};
    c.p.groups = groups;
    c.p.stride = {draw(1, 3), draw(1, 2)};
    c.p.padding = {draw(0, 2), draw(0, 1)};
    c.p.dilation = {draw(1, 2), draw(1, 3)};
    bool fits = true;
    for (int i = 0; i < 2; ++i) fits &= c.x[2 + i] + 2 * c.p.padding[i] >= c.p.dilation[i] * (c.w[2 + i] - 1) + 1;
    if (fits) return c;
  }
}

// A random pooling window whose output is valid (ops::pool2d_output_shape accepts it).
Pool2dParams draw_pool(Draw& draw, const Shape& x, bool dilated) {
  for (;;) {
    Pool2dParams p;
    p.kernel = {draw(1, 4), draw(1, 4)};
    p.stride = {draw(1, 3), draw(1, 3)};
    p.padding = {draw(0, p.kernel[0] / 2), draw(0, p.kernel[1] / 2)};
    if (dilated) p.dilation = {draw(1, 2), draw(1, 2)};
    p.ceil_mode = draw.coin();
    p.count_include_pad = draw.coin();
    if (testing::error_of([&] { ops::pool2d_output_shape(x, p); }) == "(no error)") return p;
  }
}
std::string pool_str(const Pool2dParams& p) {
  std::ostringstream os;
  os << "kernel " << p.kernel[0] << "x" << p.kernel[1] << " stride " << p.stride[0] << "," << p.stride[1] << " pad "
     << p.padding[0] << "," << p.padding[1] << " dilation " << p.dilation[0] << "," << p.dilation[1]
     << (p.ceil_mode ? " ceil" : " floor") << (p.count_include_pad ? " include-pad" : " exclude-pad");
  return os.str();
}

// Integer values in [-3, 3]: many ties for max pooling's first-maximum rule.
Tensor tie_heavy(const Shape& shape, uint64_t seed, DType dtype) {
  std::vector<double> v = testing::randn(shape, seed).to_vector<double>();
  for (double& e : v) e = std::round(1.5 * e);
  return ops::cast(Tensor::from_vector(v, shape), dtype);
}

// Random i64 class labels in [0, k).
Tensor labels(int64_t n, int64_t k, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> t(n);
  for (int64_t& e : t) e = static_cast<int64_t>(gen.next_below(static_cast<uint64_t>(k)));
  return Tensor::from_vector(t, {n});
}

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("gemm: all four transposes, strided leading dims, column-major operands, alpha and beta") {
    TETHER_REQUIRE_GPU("gemm");
    Tf32Scope strict("none");
    Draw draw(20);
    uint64_t seed = 2000;
    for (DType dtype : kFloat)
      for (int round = 0; round < 4; ++round) {
        const int64_t M = round == 0 ? 257 : draw(1, 40), N = round == 0 ? 129 : draw(1, 40),
                      K = round == 0 ? 300 : draw(1, 40);
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        for (bool ta : {false, true})
          for (bool tb : {false, true})
            for (MatLayout la : {MatLayout::row_major, MatLayout::padded, MatLayout::column_major})
              for (MatLayout lc : {MatLayout::row_major, MatLayout::padded, MatLayout::column_major}) {
                CAPTURE(ta);
                CAPTURE(tb);
                CAPTURE(std::string(mat_layout_name(la)));
                CAPTURE(std::string(mat_layout_name(lc)));
                const Laid a = mat_layout(testing::randn(ta ? Shape{K, M} : Shape{M, K}, ++seed, dtype), la);
                // B in the other layouts of A, so each operand sees each layout.
                const MatLayout lb = la == MatLayout::row_major ? MatLayout::column_major : MatLayout::row_major;
                const Laid b = mat_layout(testing::randn(tb ? Shape{N, K} : Shape{K, N}, ++seed, dtype), lb);
                for (auto [alpha, beta] : std::vector<std::pair<double, double>>{{1, 0}, {0.5, 2}, {-1.5, 1}}) {
                  CAPTURE(alpha);
                  CAPTURE(beta);
                  // beta = 0 never reads C: start it as NaN there.
                  const Tensor c0 = beta == 0 ? Tensor::full({M, N}, kNaN, dtype) : testing::randn({M, N}, ++seed, dtype);
                  Laid c = mat_layout(c0, lc);
                  ops::gemm(ta, tb, alpha, a.view.cpu, b.view.cpu, beta, c.view.cpu);
                  ops::gemm(ta, tb, alpha, a.view.gpu, b.view.gpu, beta, c.view.gpu);
                  expect_match("gemm (the whole buffer of C)", c.buffer, tol_of(dtype));
                }
              }
      }
  }

  TEST_CASE("matmul: NumPy shapes, 1-D operands, broadcast batches, transposed flags and views") {
    TETHER_REQUIRE_GPU("matmul");
    Tf32Scope strict("none");
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{4}, {4}},          {{4}, {4, 3}},          {{3, 4}, {4}},       {{3, 4}, {4, 2}},
        {{2, 3, 4}, {4, 2}}, {{2, 3, 4}, {2, 4, 2}}, {{2, 1, 3, 4}, {3, 4, 2}}, {{3, 4}, {2, 4, 2}},
        {{4}, {2, 4, 3}},    {{2, 3, 4}, {4}},       {{64, 50, 70}, {70, 33}}, {{5, 1, 30, 20}, {1, 6, 20, 17}}};
    uint64_t seed = 3000;
    for (DType dtype : kFloat)
      for (const auto& [sa, sb] : shapes) {
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(sa));
        CAPTURE(shape_str(sb));
        const Tensor av = testing::randn(sa, ++seed, dtype), bv = testing::randn(sb, ++seed, dtype);
        for (Layout la : layouts_for(static_cast<int>(sa.size())))
          for (Layout lb : {Layout::contiguous, sb.size() >= 2 ? Layout::transposed : Layout::every_other}) {
            CAPTURE(std::string(layout_name(la)));
            CAPTURE(std::string(layout_name(lb)));
            const Pair a = laid(av, la), b = laid(bv, lb);
            expect_match("matmul", {ops::matmul(a.gpu, b.gpu), ops::matmul(a.cpu, b.cpu)}, tol_of(dtype));
          }
        // trans_a / trans_b on matrices: operands stored transposed.
        if (sa.size() >= 2 && sb.size() >= 2) {
          const Pair at = pair_of(ops::contiguous(ops::transpose(av, -1, -2)));
          const Pair bt = pair_of(ops::contiguous(ops::transpose(bv, -1, -2)));
          expect_match("matmul trans_a", {ops::matmul(at.gpu, pair_of(bv).gpu, true, false), ops::matmul(at.cpu, bv, true, false)},
                       tol_of(dtype));
          expect_match("matmul trans_b", {ops::matmul(pair_of(av).gpu, bt.gpu, false, true), ops::matmul(av, bt.cpu, false, true)},
                       tol_of(dtype));
          expect_match("matmul trans_a trans_b", {ops::matmul(at.gpu, bt.gpu, true, true), ops::matmul(at.cpu, bt.cpu, true, true)},
                       tol_of(dtype));
        }
      }
  }

  TEST_CASE("conv2d forward and backward (data, weight, bias): stride, padding, dilation, groups, depthwise") {
    TETHER_REQUIRE_GPU("conv2d");
    Tf32Scope strict("none");
    Draw draw(21);
    uint64_t seed = 4000;
    std::vector<ConvDraw> cases;
    for (int i = 0; i < 24; ++i) cases.push_back(draw_conv(draw));
    ConvDraw big;  // a ResNet-like layer: many channels, large sums in the weight gradient
    big.x = {4, 64, 28, 28};
    big.w = {128, 64, 3, 3};
    big.p.stride = {2, 2};
    big.p.padding = {1, 1};
    cases.push_back(big);
    for (DType dtype : kFloat)
      for (const ConvDraw& c : cases) {
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(c.str());
        const double tol = tol_of(dtype, kConvTolF32);
        const Tensor xv = testing::randn(c.x, ++seed, dtype), wv = testing::randn(c.w, ++seed, dtype);
        const Pair bias = randn2({c.w[0]}, ++seed, dtype);
        const Shape ys = ops::conv2d_output_shape(c.x, c.w, c.p);
        for (Layout lx : layouts_for(4)) {
          CAPTURE(std::string(layout_name(lx)));
          const Pair x = laid(xv, lx), w = laid(wv, lx == Layout::contiguous ? Layout::contiguous : Layout::every_other);
          expect_match("conv2d forward", {ops::conv2d_forward(x.gpu, w.gpu, bias.gpu, c.p), ops::conv2d_forward(x.cpu, w.cpu, bias.cpu, c.p)},
                       tol);
          expect_match("conv2d forward without bias",
                       {ops::conv2d_forward(x.gpu, w.gpu, Tensor(), c.p), ops::conv2d_forward(x.cpu, w.cpu, Tensor(), c.p)}, tol);
          if (lx == Layout::transposed) continue;  // backward: contiguous, channels-last and strided grad_y
          const Pair gy = laid(testing::randn(ys, ++seed, dtype), lx);
          check_into("conv2d_backward_data", c.x, dtype, ++seed, tol, [&](bool g, const Tensor& out, bool acc) {
            ops::conv2d_backward_data(gy.on(g), w.on(g), c.p, out, acc);
          });
          check_into("conv2d_backward_weight", c.w, dtype, ++seed, tol, [&](bool g, const Tensor& out, bool acc) {
            ops::conv2d_backward_weight(gy.on(g), x.on(g), c.p, out, acc);
          });
          check_into("conv2d_backward_bias", {c.w[0]}, dtype, ++seed, tol_of(dtype), [&](bool g, const Tensor& out, bool acc) {
            ops::conv2d_backward_bias(gy.on(g), out, acc);
          });
        }
      }
  }

  TEST_CASE("max_pool2d forward (values and indices, ties, NaN) and backward") {
    TETHER_REQUIRE_GPU("max_pool2d");
    Draw draw(22);
    uint64_t seed = 5000;
    for (DType dtype : kFloat)
      for (int round = 0; round < 16; ++round) {
        const Shape xs = round == 0 ? Shape{8, 64, 56, 56} : Shape{draw(1, 3), draw(1, 4), draw(1, 11), draw(1, 11)};
        const Pool2dParams p = round == 0 ? [] {
          Pool2dParams q;
          q.kernel = {3, 3};
          q.stride = {2, 2};
          q.padding = {1, 1};
          return q;
        }() : draw_pool(draw, xs, /*dilated=*/true);
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(xs));
        CAPTURE(pool_str(p));
        const Tensor xv = round % 2 ? tie_heavy(xs, ++seed, dtype) : testing::randn(xs, ++seed, dtype);
        for (Layout l : layouts_for(4)) {
          CAPTURE(std::string(layout_name(l)));
          const Pair x = laid(xv, l);
          Pair idx;
          const Pair y = {ops::max_pool2d_forward(x.gpu, p, &idx.gpu), ops::max_pool2d_forward(x.cpu, p, &idx.cpu)};
          expect_match("max_pool2d values", y, 0.0);
          expect_match("max_pool2d indices", idx, 0.0);
          expect_match("max_pool2d without indices", {ops::max_pool2d_forward(x.gpu, p, nullptr), y.cpu}, 0.0);
          const Pair gy = laid(testing::randn(y.cpu.shape(), ++seed, dtype), l);
          check_into("max_pool2d_backward", xs, dtype, ++seed, tol_of(dtype), [&](bool g, const Tensor& out, bool acc) {
            ops::max_pool2d_backward(gy.on(g), idx.on(g), out, acc);
          });
        }
      }
    // NaN wins and propagates (the last NaN of a window on the CPU).
    for (DType dtype : kFloat) {
      std::vector<double> v = testing::randn({2, 2, 6, 6}, 5900).to_vector<double>();
      for (size_t i = 0; i < v.size(); i += 7) v[i] = kNaN;
      const Pair x = pair_of(ops::cast(Tensor::from_vector(v, {2, 2, 6, 6}), dtype));
      Pool2dParams p;
      p.kernel = {3, 3};
      p.stride = {2, 2};
      p.padding = {1, 1};
      Pair idx;
      expect_match("max_pool2d with NaN", {ops::max_pool2d_forward(x.gpu, p, &idx.gpu), ops::max_pool2d_forward(x.cpu, p, &idx.cpu)},
                   0.0);
      expect_match("max_pool2d indices with NaN", idx, 0.0);
    }
  }

  TEST_CASE("avg_pool2d (ceil_mode, count_include_pad) and adaptive_avg_pool2d, forward and backward") {
    TETHER_REQUIRE_GPU("avg_pool2d/adaptive_avg_pool2d");
    Draw draw(23);
    uint64_t seed = 6000;
    for (DType dtype : kFloat)
      for (int round = 0; round < 16; ++round) {
        const Shape xs = round == 0 ? Shape{8, 64, 28, 28} : Shape{draw(1, 3), draw(1, 4), draw(1, 11), draw(1, 11)};
        const Pool2dParams p = draw_pool(draw, xs, /*dilated=*/false);
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(xs));
        CAPTURE(pool_str(p));
        const Tensor xv = testing::randn(xs, ++seed, dtype);
        for (Layout l : layouts_for(4)) {
          CAPTURE(std::string(layout_name(l)));
          const Pair x = laid(xv, l);
          const Pair y = map(x, [&](const Tensor& t) { return ops::avg_pool2d_forward(t, p); });
          expect_match("avg_pool2d", y, tol_of(dtype));
          const Pair gy = laid(testing::randn(y.cpu.shape(), ++seed, dtype), l);
          check_into("avg_pool2d_backward", xs, dtype, ++seed, tol_of(dtype), [&](bool g, const Tensor& out, bool acc) {
            ops::avg_pool2d_backward(gy.on(g), p, out, acc);
          });
        }
        // Adaptive: divisible, non-divisible, global, identity and upsampling sizes.
        const std::vector<std::pair<int64_t, int64_t>> sizes = {
            {1, 1}, {xs[2], xs[3]}, {3, 4}, {xs[2] + 2, xs[3] + 1}, {draw(1, 7), draw(1, 7)}};
        for (auto [oh, ow] : sizes) {
          CAPTURE(oh);
          CAPTURE(ow);
          const Pair x = laid(xv, round % 2 ? Layout::channels_last : Layout::contiguous);
          const Pair y = map(x, [oh = oh, ow = ow](const Tensor& t) { return ops::adaptive_avg_pool2d_forward(t, oh, ow); });
          expect_match("adaptive_avg_pool2d", y, tol_of(dtype));
          const Pair gy = randn2(y.cpu.shape(), ++seed, dtype);
          check_into("adaptive_avg_pool2d_backward", xs, dtype, ++seed, tol_of(dtype),
                     [&](bool g, const Tensor& out, bool acc) { ops::adaptive_avg_pool2d_backward(gy.on(g), out, acc); });
        }
      }
  }

  TEST_CASE("batch_norm: train and eval, with and without affine and running stats, forward and backward") {
    TETHER_REQUIRE_GPU("batch_norm");
    Draw draw(24);
    uint64_t seed = 7000;
    for (DType dtype : kFloat)
      for (int round = 0; round < 10; ++round) {
        const Shape xs = round == 0   ? Shape{32, 64, 28, 28}
                         : round % 3 == 1 ? Shape{draw(2, 40), draw(1, 6)}
                                          : Shape{draw(1, 4), draw(1, 6), draw(1, 7), draw(1, 7)};
        const int64_t C = xs[1];
        if (shape_numel(xs) / C < 2) continue;  // training needs two values per channel
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(xs));
        const double tol = tol_of(dtype);
        const Tensor xv = ops::add_scalar(testing::randn(xs, ++seed, dtype), 0.5);
        for (bool affine : {true, false})
          for (bool running : {true, false})
            for (bool training : {true, false}) {
              if (!training && !running) continue;  // eval needs running statistics
              CAPTURE(affine);
              CAPTURE(running);
              CAPTURE(training);
              for (Layout l : {Layout::contiguous, xs.size() == 4 ? Layout::channels_last : Layout::transposed}) {
                CAPTURE(std::string(layout_name(l)));
                const Pair x = laid(xv, l);
                const Pair w = affine ? pair_of(testing::uniform({C}, 0.5, 1.5, seed + 1, dtype)) : Pair{};
                const Pair b = affine ? randn2({C}, seed + 2, dtype) : Pair{};
                const Pair rm = running ? randn2({C}, seed + 3, dtype) : Pair{};
                const Pair rv = running ? pair_of(testing::uniform({C}, 0.5, 2.0, seed + 4, dtype)) : Pair{};
                Pair mean, invstd;
                const Pair y = {ops::batch_norm_forward(x.gpu, w.gpu, b.gpu, rm.gpu, rv.gpu, training, 0.1, 1e-5, &mean.gpu,
                                                        &invstd.gpu),
                                ops::batch_norm_forward(x.cpu, w.cpu, b.cpu, rm.cpu, rv.cpu, training, 0.1, 1e-5, &mean.cpu,
                                                        &invstd.cpu)};
                expect_match("batch_norm y", y, tol);
                REQUIRE(mean.gpu.defined() == mean.cpu.defined());
                REQUIRE(invstd.gpu.defined() == invstd.cpu.defined());
                if (mean.cpu.defined()) expect_match("batch_norm save_mean", mean, tol);
                if (invstd.cpu.defined()) expect_match("batch_norm save_invstd", invstd, tol);
                if (running) {
                  expect_match("batch_norm running_mean", rm, tol);
                  expect_match("batch_norm running_var", rv, tol);
                }
                // Backward: every subset of the three gradients (save_* from each device's forward).
                const Pair gy = laid(testing::randn(xs, seed + 5, dtype), l);
                for (int wanted = 1; wanted < 8; ++wanted) {
                  const bool want_x = wanted & 1, want_w = (wanted & 2) && affine, want_b = (wanted & 4) && affine;
                  if (!want_x && !want_w && !want_b) continue;
                  for (bool acc : {false, true}) {
                    CAPTURE(wanted);
                    CAPTURE(acc);
                    auto start = [&](const Shape& s, uint64_t sd) {
                      return pair_of(acc ? testing::randn(s, sd, dtype) : Tensor::full(s, kNaN, dtype));
                    };
                    const Pair gx = want_x ? start(xs, seed + 6) : Pair{};
                    const Pair gw = want_w ? start({C}, seed + 7) : Pair{};
                    const Pair gb = want_b ? start({C}, seed + 8) : Pair{};
                    for (bool g : {false, true})
                      ops::batch_norm_backward(gy.on(g), x.on(g), w.on(g), mean.on(g), invstd.on(g), training, gx.on(g),
                                               gw.on(g), gb.on(g), acc);
                    if (want_x) expect_match("batch_norm grad_x", gx, tol);
                    if (want_w) expect_match("batch_norm grad_weight", gw, tol);
                    if (want_b) expect_match("batch_norm grad_bias", gb, tol);
                  }
                }
              }
              seed += 10;
            }
      }
  }

  TEST_CASE("softmax and log_softmax over every dim, strided inputs, -inf and large logits; backward") {
    TETHER_REQUIRE_GPU("softmax/log_softmax");
    Draw draw(25);
    uint64_t seed = 8000;
    std::vector<Shape> shapes = {{3, 5000}, {5000, 3}, {2, 2049, 3}, {64, 1000}};
    for (int i = 0; i < 8; ++i) shapes.push_back(draw.shape(static_cast<int>(draw(1, 4)), 1, 9));
    for (DType dtype : kFloat)
      for (const Shape& shape : shapes) {
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(shape));
        const int rank = static_cast<int>(shape.size());
        const Tensor xv = ops::mul_scalar(testing::randn(shape, ++seed, dtype), 3.0);
        for (int dim = -rank; dim < rank; ++dim)
          for (Layout l : layouts_for(rank)) {
            CAPTURE(dim);
            CAPTURE(std::string(layout_name(l)));
            const Pair x = laid(xv, l);
            for (bool log : {false, true}) {
              CAPTURE(log);
              const Pair y = map(x, [&](const Tensor& t) { return log ? ops::log_softmax(t, dim) : ops::softmax(t, dim); });
              expect_match(log ? "log_softmax" : "softmax", y, tol_of(dtype));
              const Pair gy = laid(testing::randn(shape, ++seed, dtype), l);
              check_into(log ? "log_softmax_backward" : "softmax_backward", shape, dtype, ++seed, tol_of(dtype),
                         [&](bool g, const Tensor& out, bool acc) {
                           if (log) ops::log_softmax_backward(gy.on(g), y.on(g), dim, out, acc);
                           else ops::softmax_backward(gy.on(g), y.on(g), dim, out, acc);
                         });
            }
          }
      }
    // Masked (-inf) and huge logits: exp must not overflow, masked classes get probability 0.
    for (DType dtype : kFloat) {
      const Pair x = pair_of(ops::cast(Tensor::from_vector(std::vector<double>{-kInf, 1.0, 2.0, -kInf, 1000.0, 999.0, -1000.0, 0.0,
                                                                               5.0, 5.0, 5.0, 5.0},
                                                           {3, 4}),
                                       dtype));
      expect_match("softmax of -inf and large logits", map(x, [](const Tensor& t) { return ops::softmax(t, 1); }), tol_of(dtype));
      expect_match("log_softmax of -inf and large logits", map(x, [](const Tensor& t) { return ops::log_softmax(t, 1); }),
                   tol_of(dtype));
    }
  }

  TEST_CASE("cross_entropy: label smoothing, every reduction, forward and backward") {
    TETHER_REQUIRE_GPU("cross_entropy");
    Draw draw(26);
    uint64_t seed = 9000;
    for (DType dtype : kFloat)
      for (int round = 0; round < 6; ++round) {
        const int64_t n = round == 0 ? 256 : draw(1, 40), k = round == 0 ? 1000 : draw(1, 30);
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(n);
        CAPTURE(k);
        const Tensor lv = ops::mul_scalar(testing::randn({n, k}, ++seed, dtype), 2.0);
        const Tensor tv = labels(n, k, ++seed);
        for (Layout l : layouts_for(2)) {
          CAPTURE(std::string(layout_name(l)));
          const Pair logits = laid(lv, l);
          const Pair target = laid(tv, l == Layout::every_other ? Layout::every_other : Layout::contiguous);
          for (double s : {0.0, 0.1, 1.0})
            for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum}) {
              CAPTURE(s);
              CAPTURE(static_cast<int>(red));
              Pair log_probs;
              const Pair loss = {ops::cross_entropy_forward(logits.gpu, target.gpu, s, red, &log_probs.gpu),
                                 ops::cross_entropy_forward(logits.cpu, target.cpu, s, red, &log_probs.cpu)};
              expect_match("cross_entropy loss", loss, tol_of(dtype));
              expect_match("cross_entropy log_probs", log_probs, tol_of(dtype));
              const Pair grad_loss = red == Reduction::none ? randn2({n}, ++seed, dtype)
                                                            : pair_of(Tensor::scalar(-1.75, dtype));
              check_into("cross_entropy_backward", {n, k}, dtype, ++seed, tol_of(dtype),
                         [&](bool g, const Tensor& out, bool acc) {
                           ops::cross_entropy_backward(grad_loss.on(g), log_probs.on(g), target.on(g), s, red, out, acc);
                         });
            }
        }
      }
  }

  TEST_CASE("TF32 (--tf32 all): GEMM and convolutions within 1e-2 of the CPU's float32") {
    TETHER_REQUIRE_GPU("TF32 GEMM and conv2d");
    Tf32Scope tf32("all");
    const Pair a = randn2({256, 384}, 10000, DType::f32), b = randn2({384, 192}, 10001, DType::f32);
    expect_match("TF32 matmul", {ops::matmul(a.gpu, b.gpu), ops::matmul(a.cpu, b.cpu)}, 1e-2);
    const Pair b2 = randn2({256, 192}, 10008, DType::f32);
    Pair c = randn2({384, 192}, 10002, DType::f32);
    ops::gemm(true, false, 0.5, a.cpu, b2.cpu, 1.0, c.cpu);
    ops::gemm(true, false, 0.5, a.gpu, b2.gpu, 1.0, c.gpu);
    expect_match("TF32 gemm", c, 1e-2);
    Conv2dParams p;
    p.padding = {1, 1};
    const Pair x = randn2({4, 64, 16, 16}, 10003, DType::f32), w = randn2({96, 64, 3, 3}, 10004, DType::f32);
    const Pair y = {ops::conv2d_forward(x.gpu, w.gpu, Tensor(), p), ops::conv2d_forward(x.cpu, w.cpu, Tensor(), p)};
    expect_match("TF32 conv2d forward", y, 1e-2);
    const Pair gy = randn2(y.cpu.shape(), 10005, DType::f32);
    check_into("TF32 conv2d_backward_data", x.cpu.shape(), DType::f32, 10006, 1e-2,
               [&](bool g, const Tensor& out, bool acc) { ops::conv2d_backward_data(gy.on(g), w.on(g), p, out, acc); });
    check_into("TF32 conv2d_backward_weight", w.cpu.shape(), DType::f32, 10007, 1e-2,
               [&](bool g, const Tensor& out, bool acc) { ops::conv2d_backward_weight(gy.on(g), x.on(g), p, out, acc); });
  }
}
