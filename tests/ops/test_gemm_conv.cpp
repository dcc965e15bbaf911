// GEMM, matmul and conv2d kernels against naive double-precision loops: every transpose
// case, alpha/beta, strided and transposed views; NumPy matmul shapes; convolutions with
// stride, padding, dilation, groups (depthwise included), 1x1, non-square shapes, batch 1
// and 3, on 1, 2 and 3 threads (both parallel schemes), and the `accumulate` flag both ways.
#include <omp.h>

#include <initializer_list>
#include <limits>
#include <vector>

#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

namespace {

// Runs body() with the OpenMP thread count set to each of `counts`, then restores it.
template <typename Fn>
void for_thread_counts(Fn&& body, std::initializer_list<int> counts = {1, 2}) {
  const int saved = omp_get_max_threads();
  for (int nt : counts) {
    CAPTURE(nt);
    omp_set_num_threads(nt);
    body();
  }
  omp_set_num_threads(saved);
}

// ---- naive references ------------------------------------------------------------------------
// C = alpha op(A) op(B) + beta C, everything read element by element through the views.
Tensor naive_gemm(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta, const Tensor& c) {
  Tensor A = ops::cast(ops::contiguous(ta ? ops::transpose(a, 0, 1) : a), DType::f64);
  Tensor B = ops::cast(ops::contiguous(tb ? ops::transpose(b, 0, 1) : b), DType::f64);
  Tensor C = ops::cast(ops::contiguous(c), DType::f64).clone();
  const int64_t M = A.size(0), K = A.size(1), N = B.size(1);
  const double* pa = A.data<double>();
  const double* pb = B.data<double>();
  double* pc = C.data<double>();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += pa[i * K + k] * pb[k * N + j];
      pc[i * N + j] = alpha * s + (beta == 0 ? 0.0 : beta * pc[i * N + j]);
    }
  return C;
}

// NumPy matmul by broadcasting both operands explicitly and looping.
Tensor naive_matmul(Tensor a, Tensor b) {
  const bool av = a.dim() == 1, bv = b.dim() == 1;
  if (av) a = ops::unsqueeze(a, 0);
  if (bv) b = ops::unsqueeze(b, 1);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  while (ba.size() < bb.size()) ba.insert(ba.begin(), 1);
  while (bb.size() < ba.size()) bb.insert(bb.begin(), 1);
  Shape batch(ba.size());
  for (size_t i = 0; i < ba.size(); ++i) batch[i] = std::max(ba[i], bb[i]);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape sa = batch, sb = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  Tensor A = ops::contiguous(ops::expand(ops::cast(a, DType::f64), sa));
  Tensor B = ops::contiguous(ops::expand(ops::cast(b, DType::f64), sb));
  const int64_t count = shape_numel(batch);
  Shape out = batch;
  out.insert(out.end(), {M, N});
  Tensor C = Tensor::zeros(out, DType::f64);
  const double* pa = A.data<double>();
  const double* pb = B.data<double>();
  double* pc = C.data<double>();
  for (int64_t t = 0; t < count; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += pa[(t * M + i) * K + k] * pb[(t * K + k) * N + j];
        pc[(t * M + i) * N + j] = s;
      }
  Shape final_shape = batch;
  if (!av) final_shape.push_back(M);
  if (!bv) final_shape.push_back(N);
  return ops::reshape(C, final_shape);
}

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, groups;
};

ops::Conv2dParams params_of(const ConvCase& c) {
  ops::Conv2dParams p;
  p.stride = {c.sh, c.sw};
  p.padding = {c.ph, c.pw};
  p.dilation = {c.dh, c.dw};
  p.groups = c.groups;
  return p;
}

// Calls f(n, o, oh, ow, ci, i, j, ih, iw) for every (output, weight tap) pair that reads an
// input pixel inside the image: the definition of a convolution, written out.
template <typename F>
void for_each_tap(const ConvCase& c, int64_t OH, int64_t OW, F&& f) {
  const int64_t Cg = c.C / c.groups, Og = c.O / c.groups;
  // (Output pixels innermost, so the input is read along rows: cache-friendly.)
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t cc = 0; cc < Cg; ++cc)
        for (int64_t i = 0; i < c.KH; ++i)
          for (int64_t j = 0; j < c.KW; ++j)
            for (int64_t oh = 0; oh < OH; ++oh)
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t ih = oh * c.sh - c.ph + i * c.dh, iw = ow * c.sw - c.pw + j * c.dw;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                f(n, o, oh, ow, (o / Og) * Cg + cc, cc, i, j, ih, iw);
              }
}

struct NaiveConv {
  Tensor y, gx, gw, gb;  // f64
};

NaiveConv naive_conv(const ConvCase& c, const Tensor& x_, const Tensor& w_, const Tensor& b_, const Tensor& gy_) {
  const int64_t OH = (c.H + 2 * c.ph - c.dh * (c.KH - 1) - 1) / c.sh + 1;
  const int64_t OW = (c.W + 2 * c.pw - c.dw * (c.KW - 1) - 1) / c.sw + 1;
  const int64_t Cg = c.C / c.groups;
  std::vector<double> x = x_.to_vector<double>(), w = w_.to_vector<double>(), gy = gy_.to_vector<double>();
  std::vector<double> b = b_.defined() ? b_.to_vector<double>() : std::vector<double>(c.O, 0.0);
  std::vector<double> y(c.N * c.O * OH * OW), gx(x.size(), 0.0), gw(w.size(), 0.0), gb(c.O, 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t p = 0; p < OH * OW; ++p) {
        y[(n * c.O + o) * OH * OW + p] = b[o];
        gb[o] += gy[(n * c.O + o) * OH * OW + p];
      }
  for_each_tap(c, OH, OW, [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t ci, int64_t cc, int64_t i,
                              int64_t j, int64_t ih, int64_t iw) {
    const int64_t yi = ((n * c.O + o) * OH + oh) * OW + ow;
    const int64_t xi = ((n * c.C + ci) * c.H + ih) * c.W + iw;
    const int64_t wi = ((o * Cg + cc) * c.KH + i) * c.KW + j;
    y[yi] += w[wi] * x[xi];
    gx[xi] += w[wi] * gy[yi];
    gw[wi] += x[xi] * gy[yi];
  });
  return {Tensor::from_vector(y, {c.N, c.O, OH, OW}), Tensor::from_vector(gx, x_.shape()),
          Tensor::from_vector(gw, w_.shape()), Tensor::from_vector(gb, {c.O})};
}

Tensor nan_like(const Tensor& t) { return Tensor::full(t.shape(), std::numeric_limits<double>::quiet_NaN(), t.dtype()); }

// Checks forward and all three backward kernels of one case against the naive loops, on
// each thread count of `threads` (the reference is computed once).
void check_conv(const ConvCase& c, DType dtype, double rtol, double atol, uint64_t seed,
                std::initializer_list<int> threads = {1, 2}) {
  const ops::Conv2dParams p = params_of(c);
  Tensor x = randn({c.N, c.C, c.H, c.W}, seed, dtype);
  Tensor w = randn({c.O, c.C / c.groups, c.KH, c.KW}, seed + 1, dtype);
  Tensor b = randn({c.O}, seed + 2, dtype);
  const Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), p);
  Tensor gy = randn(ys, seed + 3, dtype);
  const NaiveConv ref = naive_conv(c, x, w, b, gy);
  for_thread_counts([&] {

  TETHER_CHECK_CLOSE(ops::conv2d_forward(x, w, b, p), ref.y, rtol, atol);
  // Without bias: the reference minus the bias.
  TETHER_CHECK_CLOSE(ops::conv2d_forward(x, w, Tensor(), p),
                     ops::binary(ops::Binary::sub, ref.y, ops::reshape(ops::cast(b, DType::f64), {1, c.O, 1, 1})), rtol,
                     atol);

  // accumulate = false ignores what was there (NaN), accumulate = true adds to it.
  Tensor gx = nan_like(x), gw = nan_like(w), gb = nan_like(b);
  ops::conv2d_backward_data(gy, w, p, gx, false);
  ops::conv2d_backward_weight(gy, x, p, gw, false);
  ops::conv2d_backward_bias(gy, gb, false);
  TETHER_CHECK_CLOSE(gx, ref.gx, rtol, atol);
  TETHER_CHECK_CLOSE(gw, ref.gw, rtol, atol);
  TETHER_CHECK_CLOSE(gb, ref.gb, rtol, atol);

  Tensor x0 = randn(x.shape(), seed + 4, dtype), w0 = randn(w.shape(), seed + 5, dtype), b0 = randn(b.shape(), seed + 6, dtype);
  Tensor gx2 = x0.clone(), gw2 = w0.clone(), gb2 = b0.clone();
  ops::conv2d_backward_data(gy, w, p, gx2, true);
  ops::conv2d_backward_weight(gy, x, p, gw2, true);
  ops::conv2d_backward_bias(gy, gb2, true);
  auto plus = [](const Tensor& a, const Tensor& r) { return ops::binary(ops::Binary::add, ops::cast(a, DType::f64), r); };
  TETHER_CHECK_CLOSE(gx2, plus(x0, ref.gx), rtol, atol);
  TETHER_CHECK_CLOSE(gw2, plus(w0, ref.gw), rtol, atol);
  TETHER_CHECK_CLOSE(gb2, plus(b0, ref.gb), rtol, atol);
  }, threads);
}

const std::vector<ConvCase> kConvCases = {
    // N  C   H   W  O  KH KW sh sw ph pw dh dw groups
    {1, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},      // 3x3 same padding, batch 1
    {3, 4, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1},      // stride 2, batch 3
    {2, 3, 8, 10, 4, 2, 3, 1, 2, 0, 1, 1, 1, 1},     // non-square kernel, stride, padding
    {2, 2, 9, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},      // dilation
    {1, 2, 10, 7, 2, 3, 2, 2, 1, 1, 0, 2, 3, 1},     // mixed stride/dilation per axis
    {3, 6, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2},      // groups
    {2, 6, 9, 8, 9, 3, 3, 2, 2, 1, 1, 1, 1, 3},      // groups, stride 2
    {3, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4},      // depthwise
    {2, 3, 9, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 3},      // depthwise, multiplier 2, stride 2
    {1, 3, 9, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 3},      // depthwise, dilation
    {2, 4, 11, 11, 4, 5, 5, 2, 2, 2, 2, 1, 1, 4},    // depthwise 5x5 stride 2
    {3, 8, 5, 6, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1},      // 1x1 (no im2col)
    {2, 8, 5, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2},      // 1x1 grouped
    {3, 8, 7, 7, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1},      // 1x1 stride 2
    {2, 3, 16, 16, 4, 7, 7, 2, 2, 3, 3, 1, 1, 1},    // 7x7 stride 2 (a stem)
    {2, 64, 24, 24, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // large enough for bands of output pixels
    {2, 64, 25, 25, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // bands that end mid-row
    {3, 64, 12, 12, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // small maps: bands spanning images
    {3, 512, 20, 30, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},  // deep K, 3 images on 2 threads: 2 column chunks
    {2, 3, 12, 40, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1},    // stride 2 on long rows (vector paths)
    {3, 4, 9, 41, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4},     // depthwise stride 2, long rows
    {2, 5, 6, 37, 3, 1, 1, 2, 2, 0, 0, 1, 1, 1},     // 1x1 stride 2, long odd rows
    {2, 16, 32, 24, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1},   // 1x1 on a large map (per-image GEMMs)
    {2, 4, 30, 30, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4},    // depthwise-like grouped (2 in per group)
    {2, 3, 5, 5, 2, 5, 5, 1, 1, 0, 0, 1, 1, 1},      // kernel as large as the input
    {3, 2, 4, 4, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1},      // stride larger than the kernel overlap
};

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("gemm: 4 transpose cases, alpha and beta, f32 and f64") {
    for (DType dt : {DType::f64, DType::f32}) {
      const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (auto [alpha, beta] : std::vector<std::pair<double, double>>{{1, 0}, {0.5, 1}, {-2, 0.25}}) {
            CAPTURE(ta);
            CAPTURE(tb);
            CAPTURE(alpha);
            CAPTURE(beta);
            const int64_t M = 37, N = 29, K = 41;
            Tensor a = randn(ta ? Shape{K, M} : Shape{M, K}, 1, dt);
            Tensor b = randn(tb ? Shape{N, K} : Shape{K, N}, 2, dt);
            Tensor c = beta == 0 ? nan_like(Tensor::empty({M, N}, dt)) : randn({M, N}, 3, dt);
            Tensor ref = naive_gemm(ta, tb, alpha, a, b, beta, c);
            ops::gemm(ta, tb, alpha, a, b, beta, c);
            TETHER_CHECK_CLOSE(c, ref, tol, tol);
          }
    }
  }

  TEST_CASE("gemm: strided and transposed views") {
    // a: columns 3..3+K of a wider matrix (leading stride 50); b: a transposed view (unit
    // stride in dim 0); c: a window of a larger matrix, then a transposed window.
    const int64_t M = 20, N = 17, K = 23;
    Tensor abig = randn({M, 50}, 4);
    Tensor a = ops::narrow(abig, 1, 3, K);
    Tensor bt = randn({N, K}, 5);
    Tensor b = ops::transpose(bt, 0, 1);  // [K, N], stride (1, K)
    for (bool c_transposed : {false, true}) {
      CAPTURE(c_transposed);
      Tensor cbig = randn({40, 40}, 6);
      Tensor c = c_transposed ? ops::transpose(ops::narrow(ops::narrow(cbig, 0, 2, N), 1, 5, M), 0, 1)
                              : ops::narrow(ops::narrow(cbig, 0, 2, M), 1, 5, N);
      Tensor before = cbig.clone();
      Tensor ref = naive_gemm(false, false, 1.5, a, b, 0.5, c);
      ops::gemm(false, false, 1.5, a, b, 0.5, c);
      TETHER_CHECK_CLOSE(c, ref, 1e-12, 1e-12);
      // Nothing outside the window changed.
      Tensor mask_ref = before.clone();
      Tensor win = c_transposed ? ops::transpose(ops::narrow(ops::narrow(mask_ref, 0, 2, N), 1, 5, M), 0, 1)
                                : ops::narrow(ops::narrow(mask_ref, 0, 2, M), 1, 5, N);
      ops::copy_(win, c);
      CHECK(close_ratio(cbig, mask_ref, 0, 1e-300) == 0);
    }
    // Transposed flags on transposed views, and a view with no unit stride (copied inside).
    Tensor at = ops::transpose(randn({M, K}, 7), 0, 1);  // [K, M] view
    Tensor c = Tensor::empty({M, N}, DType::f64);
    ops::gemm(true, true, 1.0, at, bt, 0.0, c);  // at^T = [M, K], bt^T = [K, N]
    TETHER_CHECK_CLOSE(c, naive_gemm(true, true, 1.0, at, bt, 0.0, c), 1e-12, 1e-12);
    Tensor base = randn({2 * K * M}, 8);
    Tensor nounit = make_view(base, {M, K}, {2 * K, 2}, 0);
    ops::gemm(false, true, 1.0, nounit, bt, 0.0, c);
    TETHER_CHECK_CLOSE(c, naive_gemm(false, true, 1.0, nounit, bt, 0.0, c), 1e-12, 1e-12);
    // Empty K: C = beta C.
    Tensor e = randn({3, 4}, 9);
    Tensor e_ref = ops::mul_scalar(e, 2.0);
    ops::gemm(false, false, 1.0, Tensor::empty({3, 0}, DType::f64), Tensor::empty({0, 4}, DType::f64), 2.0, e);
    TETHER_CHECK_CLOSE(e, e_ref, 0, 1e-300);
  }

  TEST_CASE("gemm: bad shapes and dtypes throw") {
    Tensor a = randn({3, 4}, 1), b = randn({5, 6}, 2), c = randn({3, 6}, 3);
    CHECK_THROWS_AS(ops::gemm(false, false, 1.0, a, b, 0.0, c), Error);
    CHECK_THROWS_AS(ops::gemm(false, false, 1.0, a, randn({4, 6}, 2, DType::f32), 0.0, c), Error);
    CHECK_THROWS_AS(ops::matmul(a, b), Error);
    CHECK_THROWS_AS(ops::matmul(randn({2, 3, 4}, 1), randn({3, 4, 5}, 2)), Error);  // batch 2 vs 3
  }

  TEST_CASE("matmul: NumPy shapes, broadcasting, transposes") {
    struct Case {
      Shape a, b;
      Shape out;
    };
    const std::vector<Case> cases = {
        {{5}, {5}, {}},
        {{5}, {5, 3}, {3}},
        {{4, 5}, {5}, {4}},
        {{4, 5}, {5, 3}, {4, 3}},
        {{6, 4, 5}, {5, 3}, {6, 4, 3}},        // folded into one GEMM
        {{6, 4, 5}, {6, 5, 3}, {6, 4, 3}},     // batched
        {{2, 1, 4, 5}, {3, 5, 3}, {2, 3, 4, 3}},  // broadcast batch dims
        {{4, 5}, {2, 5, 3}, {2, 4, 3}},        // left operand broadcast
        {{5}, {7, 5, 3}, {7, 3}},
        {{7, 4, 5}, {5}, {7, 4}},
        {{1, 4, 5}, {3, 1, 5, 2}, {3, 1, 4, 2}},
        {{9, 1, 5}, {5, 2}, {9, 1, 2}},        // M = 1 folded
    };
    for_thread_counts([&] {
      for (const Case& c : cases) {
        CAPTURE(shape_str(c.a));
        CAPTURE(shape_str(c.b));
        for (DType dt : {DType::f64, DType::f32}) {
          Tensor a = randn(c.a, 11, dt), b = randn(c.b, 12, dt);
          Tensor y = ops::matmul(a, b);
          CHECK(y.shape() == c.out);
          TETHER_CHECK_CLOSE(y, naive_matmul(a, b), dt == DType::f64 ? 1e-12 : 1e-5, dt == DType::f64 ? 1e-12 : 1e-5);
        }
      }
      // Transpose flags on batched operands; non-contiguous (permuted) operands.
      Tensor at = randn({6, 5, 4}, 13), bt = randn({6, 3, 5}, 14);
      TETHER_CHECK_CLOSE(ops::matmul(at, bt, true, true),
                         naive_matmul(ops::transpose(at, 1, 2), ops::transpose(bt, 1, 2)), 1e-12, 1e-12);
      Tensor ap = ops::permute(randn({4, 6, 5}, 15), {1, 0, 2});  // [6, 4, 5], batch stride 5
      TETHER_CHECK_CLOSE(ops::matmul(ap, randn({5, 3}, 16)), naive_matmul(ap, randn({5, 3}, 16)), 1e-12, 1e-12);
      Tensor ae = ops::expand(randn({1, 4, 5}, 17), {6, 4, 5});  // stride-0 batch
      TETHER_CHECK_CLOSE(ops::matmul(ae, randn({6, 5, 3}, 18)), naive_matmul(ae, randn({6, 5, 3}, 18)), 1e-12, 1e-12);
      // A stride-0 batch of single rows cannot be folded into one GEMM (it once read past the end).
      Tensor row = ops::expand(randn({1, 1, 5}, 23), {6, 1, 5});
      TETHER_CHECK_CLOSE(ops::matmul(row, randn({5, 3}, 24)), naive_matmul(row, randn({5, 3}, 24)), 1e-12, 1e-12);
      // Many small products (one per thread) and a few large ones (Eigen's threads).
      Tensor sa = randn({64, 8, 7}, 19), sb = randn({64, 7, 9}, 20);
      TETHER_CHECK_CLOSE(ops::matmul(sa, sb), naive_matmul(sa, sb), 1e-12, 1e-12);
      Tensor la = randn({3, 150, 140}, 21), lb = randn({3, 140, 130}, 22);
      TETHER_CHECK_CLOSE(ops::matmul(la, lb), naive_matmul(la, lb), 1e-11, 1e-11);
    });
  }

  TEST_CASE("conv2d kernels vs naive loops (f64, both parallel schemes)") {
    uint64_t seed = 100;
    for (const ConvCase& c : kConvCases) {
        CAPTURE(c.N);
        CAPTURE(c.C);
        CAPTURE(c.H);
        CAPTURE(c.W);
        CAPTURE(c.O);
        CAPTURE(c.KH);
        CAPTURE(c.KW);
        CAPTURE(c.sh);
        CAPTURE(c.ph);
        CAPTURE(c.dh);
        CAPTURE(c.groups);
        check_conv(c, DType::f64, 1e-10, 1e-10, seed += 10);
    }
  }

  TEST_CASE("conv2d kernels on 3 threads (uneven splits, more threads than groups)") {
    for (size_t i : {1, 5, 6, 12, 21}) {
      CAPTURE(i);
      check_conv(kConvCases[i], DType::f64, 1e-10, 1e-10, 300 + i, {3});
    }
  }

  TEST_CASE("conv2d kernels in f32") {
    for (size_t i : {1, 6, 8, 13, 15, 17, 18, 19, 20, 21}) {
      CAPTURE(i);
      check_conv(kConvCases[i], DType::f32, 1e-4, 1e-4, 7);
    }
  }

  TEST_CASE("conv2d: non-contiguous inputs and outputs") {
    const ConvCase c{2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    const ops::Conv2dParams p = params_of(c);
    // x as a permuted view of an NHWC tensor; gradients written into transposed views.
    Tensor x_nhwc = randn({c.N, c.H, c.W, c.C}, 30);
    Tensor x = ops::permute(x_nhwc, {0, 3, 1, 2});
    Tensor w = randn({c.O, c.C, c.KH, c.KW}, 31);
    Tensor gy = randn(ops::conv2d_output_shape(x.shape(), w.shape(), p), 32);
    const NaiveConv ref = naive_conv(c, x, w, Tensor(), gy);
    TETHER_CHECK_CLOSE(ops::conv2d_forward(x, w, Tensor(), p), ref.y, 1e-10, 1e-10);
    Tensor gx_nhwc = Tensor::zeros({c.N, c.H, c.W, c.C}, DType::f64);
    Tensor gx = ops::permute(gx_nhwc, {0, 3, 1, 2});
    ops::conv2d_backward_data(gy, w, p, gx, true);
    TETHER_CHECK_CLOSE(gx, ref.gx, 1e-10, 1e-10);
    Tensor gw_t = Tensor::zeros({c.C, c.O, c.KH, c.KW}, DType::f64);
    Tensor gw = ops::transpose(gw_t, 0, 1);
    ops::conv2d_backward_weight(gy, x, p, gw, false);
    TETHER_CHECK_CLOSE(gw, ref.gw, 1e-10, 1e-10);
  }

  TEST_CASE("conv2d: bad arguments throw") {
    ops::Conv2dParams p;
    Tensor x = randn({1, 4, 5, 5}, 1), w = randn({3, 4, 3, 3}, 2);
    CHECK_THROWS_AS(ops::conv2d_forward(x, randn({3, 2, 3, 3}, 2), Tensor(), p), Error);  // channels
    CHECK_THROWS_AS(ops::conv2d_forward(x, randn({3, 4, 7, 7}, 2), Tensor(), p), Error);  // kernel too big
    CHECK_THROWS_AS(ops::conv2d_forward(x, w, randn({4}, 3), p), Error);                // bias size
    CHECK_THROWS_AS(ops::conv2d_forward(x, randn({3, 4, 3, 3}, 2, DType::f32), Tensor(), p), Error);  // dtype
    Tensor gx = Tensor::empty(x.shape(), DType::f64);
    CHECK_THROWS_AS(ops::conv2d_backward_data(randn({1, 3, 4, 4}, 4), w, p, gx, false), Error);  // grad_y shape
  }
}
