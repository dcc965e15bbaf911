// Pooling and batch-norm kernels against naive float64 implementations written here from the
// definitions (window by window, channel by channel), over many random configurations; plus
// the accumulate flag, non-contiguous operands, running statistics and argument errors.
#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;
using ops::Pool2dParams;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor f64_tensor(const std::vector<double>& v, const Shape& shape) { return Tensor::from_vector<double>(v, shape); }

// Integer-valued data (many ties) for max pooling, so the first-maximum rule is exercised.
Tensor tie_heavy(const Shape& shape, uint64_t seed, DType dtype) {
  Tensor t = randn(shape, seed);
  std::vector<double> v = t.to_vector<double>();
  for (double& e : v) e = std::round(2 * e);
  return f64_tensor(v, shape).to(dtype);
}

// Output length along one axis (the PyTorch documentation's formula, in floating point).
int64_t naive_out_len(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const double v = static_cast<double>(in + 2 * p - d * (k - 1) - 1) / static_cast<double>(s);
  int64_t o = static_cast<int64_t>(ceil_mode ? std::ceil(v) : std::floor(v)) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;  // the last window must start inside input or left padding
  return o;
}

struct NaivePool {
  Shape shape;
  std::vector<double> y;
  std::vector<int64_t> idx;  // max pooling
};

// Max pooling by definition: scan every window position (padding = -inf), keep the first
// strictly larger value.
NaivePool naive_max_pool(const Tensor& x, const Pool2dParams& p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = naive_out_len(H, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceil_mode);
  const int64_t OW = naive_out_len(W, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceil_mode);
  const std::vector<double> xv = x.to_vector<double>();
  NaivePool r{{N, C, OH, OW}, {}, {}};
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double best = -kInf;
        int64_t at = -1;
        for (int64_t i = 0; i < p.kernel[0]; ++i)
          for (int64_t j = 0; j < p.kernel[1]; ++j) {
            const int64_t h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
            const int64_t w = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
            const bool inside = h >= 0 && h < H && w >= 0 && w < W;
            const double v = inside ? xv[nc * H * W + h * W + w] : -kInf;
            if (inside && (at < 0 || v > best)) {
              best = v;
              at = h * W + w;
            }
          }
        r.y.push_back(best);
        r.idx.push_back(at);
      }
  return r;
}

// Average pooling by definition: the divisor counts window positions inside the padded
// input (count_include_pad) or inside the input; positions past input + padding (the
// ceil_mode overhang) never count.
struct AvgCell {
  std::vector<int64_t> hs, ws;  // input rows / columns inside the window
  double divisor;
};
AvgCell naive_avg_cell(int64_t oh, int64_t ow, int64_t H, int64_t W, const Pool2dParams& p) {
  AvgCell cell{{}, {}, 0};
  int64_t ph = 0, pw = 0;
  for (int64_t i = 0; i < p.kernel[0]; ++i) {
    const int64_t h = oh * p.stride[0] - p.padding[0] + i;
    if (h < H + p.padding[0]) ++ph;
    if (h >= 0 && h < H) cell.hs.push_back(h);
  }
  for (int64_t j = 0; j < p.kernel[1]; ++j) {
    const int64_t w = ow * p.stride[1] - p.padding[1] + j;
    if (w < W + p.padding[1]) ++pw;
    if (w >= 0 && w < W) cell.ws.push_back(w);
  }
  cell.divisor = p.count_include_pad ? static_cast<double>(ph * pw) : static_cast<double>(cell.hs.size() * cell.ws.size());
  return cell;
}

NaivePool naive_avg_pool(const Tensor& x, const Pool2dParams& p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = naive_out_len(H, p.kernel[0], p.stride[0], p.padding[0], 1, p.ceil_mode);
  const int64_t OW = naive_out_len(W, p.kernel[1], p.stride[1], p.padding[1], 1, p.ceil_mode);
  const std::vector<double> xv = x.to_vector<double>();
  NaivePool r{{N, C, OH, OW}, {}, {}};
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgCell cell = naive_avg_cell(oh, ow, H, W, p);
        double s = 0;
        for (int64_t h : cell.hs)
          for (int64_t w : cell.ws) s += xv[nc * H * W + h * W + w];
        r.y.push_back(cell.hs.empty() || cell.ws.empty() ? 0.0 : s / cell.divisor);
      }
  return r;
}

Tensor naive_avg_pool_backward(const Tensor& gy, const Shape& xshape, const Pool2dParams& p) {
  const int64_t H = xshape[2], W = xshape[3], OH = gy.size(2), OW = gy.size(3);
  const std::vector<double> g = gy.to_vector<double>();
  std::vector<double> gx(shape_numel(xshape), 0.0);
  for (int64_t nc = 0; nc < xshape[0] * xshape[1]; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgCell cell = naive_avg_cell(oh, ow, H, W, p);
        for (int64_t h : cell.hs)
          for (int64_t w : cell.ws) gx[nc * H * W + h * W + w] += g[(nc * OH + oh) * OW + ow] / cell.divisor;
      }
  return f64_tensor(gx, xshape);
}

// Adaptive bins from the definition: [floor(i*H/OH), ceil((i+1)*H/OH)).
std::pair<int64_t, int64_t> naive_bin(int64_t i, int64_t in, int64_t out) {
  return {static_cast<int64_t>(std::floor(static_cast<double>(i * in) / static_cast<double>(out))),
          static_cast<int64_t>(std::ceil(static_cast<double>((i + 1) * in) / static_cast<double>(out)))};
}

Tensor naive_adaptive(const Tensor& x, int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> y;
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        auto [h0, h1] = naive_bin(oh, H, OH);
        auto [w0, w1] = naive_bin(ow, W, OW);
        double s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += xv[nc * H * W + h * W + w];
        y.push_back(s / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
  return f64_tensor(y, {N, C, OH, OW});
}

Tensor naive_adaptive_backward(const Tensor& gy, const Shape& xshape) {
  const int64_t H = xshape[2], W = xshape[3], OH = gy.size(2), OW = gy.size(3);
  const std::vector<double> g = gy.to_vector<double>();
  std::vector<double> gx(shape_numel(xshape), 0.0);
  for (int64_t nc = 0; nc < xshape[0] * xshape[1]; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        auto [h0, h1] = naive_bin(oh, H, OH);
        auto [w0, w1] = naive_bin(ow, W, OW);
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w)
            gx[nc * H * W + h * W + w] += g[(nc * OH + oh) * OW + ow] / static_cast<double>((h1 - h0) * (w1 - w0));
      }
  return f64_tensor(gx, xshape);
}

// A non-contiguous tensor holding the same values as `t` (every other element of a buffer).
Tensor strided_copy(const Tensor& t) {
  Shape big = t.shape();
  big.push_back(2);
  Tensor v = ops::select(Tensor::zeros(big, t.dtype()), -1, 0);
  ops::copy_(v, t);
  REQUIRE(!v.is_contiguous());
  return v;
}

struct Rng {
  std::mt19937_64 gen;
  int64_t operator()(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); }
};

// Random pooling configuration; dilation only for max pooling.
Pool2dParams random_params(Rng& rng, bool dilated) {
  Pool2dParams p;
  for (int i = 0; i < 2; ++i) {
    p.kernel[i] = rng(1, 4);
    p.stride[i] = rng(1, 3);
    p.padding[i] = rng(0, p.kernel[i] / 2);
    p.dilation[i] = dilated ? rng(1, 2) : 1;
  }
  p.ceil_mode = rng(0, 1) == 1;
  p.count_include_pad = rng(0, 1) == 1;
  return p;
}

std::string describe(const Shape& xs, const Pool2dParams& p) {
  std::ostringstream os;
  os << "input " << shape_str(xs) << " kernel " << p.kernel[0] << "x" << p.kernel[1] << " stride " << p.stride[0]
     << "x" << p.stride[1] << " padding " << p.padding[0] << "x" << p.padding[1] << " dilation " << p.dilation[0]
     << "x" << p.dilation[1] << " ceil_mode " << p.ceil_mode << " count_include_pad " << p.count_include_pad;
  return os.str();
}

bool valid_geometry(const Shape& xs, const Pool2dParams& p) {
  for (int i = 0; i < 2; ++i)
    if (naive_out_len(xs[2 + i], p.kernel[i], p.stride[i], p.padding[i], p.dilation[i], p.ceil_mode) < 1) return false;
  return true;
}

// True when ceil_mode adds an output whose window overhangs the padded input.
bool has_overhang(const Shape& xs, const Pool2dParams& p) {
  if (!p.ceil_mode) return false;
  for (int i = 0; i < 2; ++i)
    if (naive_out_len(xs[2 + i], p.kernel[i], p.stride[i], p.padding[i], p.dilation[i], true) !=
        naive_out_len(xs[2 + i], p.kernel[i], p.stride[i], p.padding[i], p.dilation[i], false))
      return true;
  return false;
}

// ---- batch norm reference -----------------------------------------------------------------
struct NaiveBn {
  std::vector<double> mean, var;  // per channel: batch mean, biased variance
  Tensor y;
};

// x [N, C] or [N, C, H, W]; mean/var from the batch (training) or given (eval).
NaiveBn naive_bn(const Tensor& x, const std::vector<double>& w, const std::vector<double>& b, bool training,
                 const std::vector<double>& rm, const std::vector<double>& rv, double eps) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  const std::vector<double> xv = x.to_vector<double>();
  NaiveBn r{std::vector<double>(C), std::vector<double>(C), {}};
  auto at = [&](int64_t n, int64_t c, int64_t i) { return (n * C + c) * HW + i; };
  for (int64_t c = 0; c < C; ++c) {
    if (training) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) s += xv[at(n, c, i)];
      r.mean[c] = s / static_cast<double>(N * HW);
      double q = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) q += (xv[at(n, c, i)] - r.mean[c]) * (xv[at(n, c, i)] - r.mean[c]);
      r.var[c] = q / static_cast<double>(N * HW);
    } else {
      r.mean[c] = rm[c];
      r.var[c] = rv[c];
    }
  }
  std::vector<double> y(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i)
        y[at(n, c, i)] = (xv[at(n, c, i)] - r.mean[c]) / std::sqrt(r.var[c] + eps) * w[c] + b[c];
  r.y = f64_tensor(y, x.shape());
  return r;
}

struct NaiveBnGrads {
  Tensor gx, gw, gb;
};

// Textbook batch-norm gradients. Training: gx = w/(M sigma) (M dy - sum dy - x_hat sum(dy x_hat));
// eval: the statistics are constants, gx = dy w / sigma.
NaiveBnGrads naive_bn_backward(const Tensor& gy, const Tensor& x, const std::vector<double>& w,
                               const std::vector<double>& mean, const std::vector<double>& var, double eps,
                               bool training) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  const double M = static_cast<double>(N * HW);
  const std::vector<double> xv = x.to_vector<double>(), g = gy.to_vector<double>();
  auto at = [&](int64_t n, int64_t c, int64_t i) { return (n * C + c) * HW + i; };
  std::vector<double> gx(xv.size()), gw(C), gb(C);
  for (int64_t c = 0; c < C; ++c) {
    const double sigma = std::sqrt(var[c] + eps);
    double sdy = 0, sdyxh = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        sdy += g[at(n, c, i)];
        sdyxh += g[at(n, c, i)] * (xv[at(n, c, i)] - mean[c]) / sigma;
      }
    gw[c] = sdyxh;
    gb[c] = sdy;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double xh = (xv[at(n, c, i)] - mean[c]) / sigma;
        gx[at(n, c, i)] = training ? w[c] / (M * sigma) * (M * g[at(n, c, i)] - sdy - xh * sdyxh)
                                   : g[at(n, c, i)] * w[c] / sigma;
      }
  }
  return {f64_tensor(gx, x.shape()), f64_tensor(gw, {C}), f64_tensor(gb, {C})};
}

Tensor add_t(const Tensor& a, const Tensor& b) { return ops::binary(ops::Binary::add, a, b); }

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("max_pool2d forward/backward match a naive implementation over random configurations") {
    Rng rng{std::mt19937_64(7)};
    int tested = 0, overhangs = 0, dilated = 0;
    for (int trial = 0; trial < 300; ++trial) {
      const Shape xs{rng(1, 2), rng(1, 3), rng(1, 9), rng(1, 9)};
      const Pool2dParams p = random_params(rng, true);
      if (!valid_geometry(xs, p)) {
        CHECK_THROWS_AS(ops::max_pool2d_forward(Tensor::zeros(xs, DType::f64), p, nullptr), Error);
        continue;
      }
      const DType dtype = trial % 2 ? DType::f32 : DType::f64;
      INFO(describe(xs, p));
      ++tested;
      overhangs += has_overhang(xs, p);
      dilated += p.dilation[0] > 1 || p.dilation[1] > 1;
      Tensor x = tie_heavy(xs, 100 + trial, dtype);
      const NaivePool want = naive_max_pool(x, p);
      Tensor idx;
      Tensor y = ops::max_pool2d_forward(trial % 3 == 0 ? strided_copy(x) : x, p, &idx);
      REQUIRE(y.shape() == want.shape);
      CHECK(y.dtype() == dtype);
      CHECK(y.to_vector<double>() == want.y);  // exact: max copies a value
      CHECK(idx.to_vector<int64_t>() == want.idx);
      CHECK(ops::max_pool2d_forward(x, p, nullptr).to_vector<double>() == want.y);  // without indices

      // Backward: each output's gradient lands on its argmax (ties: the first maximum).
      Tensor gy = randn(want.shape, 500 + trial, dtype);
      std::vector<double> gxw(x.numel(), 0.0);
      const std::vector<double> gyv = gy.to_vector<double>();
      const int64_t plane_in = xs[2] * xs[3], plane_out = want.shape[2] * want.shape[3];
      for (size_t o = 0; o < want.idx.size(); ++o)
        if (want.idx[o] >= 0)  // -1: a window (large dilation) that saw no input
          gxw[(static_cast<int64_t>(o) / plane_out) * plane_in + want.idx[o]] += gyv[o];
      Tensor gx = Tensor::full(xs, NAN, dtype);  // overwritten, whatever it held
      ops::max_pool2d_backward(gy, idx, gx, false);
      const double tol = dtype == DType::f32 ? 1e-6 : 1e-14;
      TETHER_CHECK_CLOSE(gx, f64_tensor(gxw, xs), tol, tol);
    }
    CHECK(tested > 150);
    CHECK(overhangs > 10);
    CHECK(dilated > 50);
  }

  TEST_CASE("max_pool2d: first maximum on ties, NaN propagates, -inf padding") {
    // One 2x3 plane, kernel 2x3 (single window) with ties at the two 5s.
    Tensor x = f64_tensor({1, 5, 2, 5, 0, 3}, {1, 1, 2, 3});
    Pool2dParams p;
    p.kernel = {2, 3};
    Tensor idx;
    Tensor y = ops::max_pool2d_forward(x, p, &idx);
    CHECK(y.item<double>() == 5.0);
    CHECK(idx.item<int64_t>() == 1);
    // NaN wins over any number (PyTorch).
    Tensor xn = f64_tensor({1, NAN, 7, 2, 0, 3}, {1, 1, 2, 3});
    y = ops::max_pool2d_forward(xn, p, &idx);
    CHECK(std::isnan(y.item<double>()));
    CHECK(idx.item<int64_t>() == 1);
    // All-negative input with padding: the padding never wins.
    Tensor neg = f64_tensor({-3, -2, -5, -4}, {1, 1, 2, 2});
    Pool2dParams pp;
    pp.kernel = {2, 2};
    pp.padding = {1, 1};
    pp.stride = {2, 2};
    y = ops::max_pool2d_forward(neg, pp, &idx);
    CHECK(y.to_vector<double>() == std::vector<double>{-3, -2, -5, -4});
    CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
  }

  TEST_CASE("avg_pool2d forward/backward match a naive implementation over random configurations") {
    Rng rng{std::mt19937_64(11)};
    int tested = 0, overhangs = 0, padded_excluded = 0;
    for (int trial = 0; trial < 300; ++trial) {
      const Shape xs{rng(1, 2), rng(1, 3), rng(1, 9), rng(1, 9)};
      const Pool2dParams p = random_params(rng, false);
      if (!valid_geometry(xs, p)) continue;
      const DType dtype = trial % 2 ? DType::f32 : DType::f64;
      INFO(describe(xs, p));
      ++tested;
      overhangs += has_overhang(xs, p);
      padded_excluded += !p.count_include_pad && (p.padding[0] > 0 || p.padding[1] > 0);
      Tensor x = randn(xs, 900 + trial).to(dtype);
      const NaivePool want = naive_avg_pool(x, p);
      Tensor y = ops::avg_pool2d_forward(trial % 3 == 0 ? strided_copy(x) : x, p);
      REQUIRE(y.shape() == want.shape);
      const double tol = dtype == DType::f32 ? 1e-6 : 1e-13;
      TETHER_CHECK_CLOSE(y, f64_tensor(want.y, want.shape), tol, tol);

      Tensor gy = randn(want.shape, 1300 + trial, dtype);
      Tensor want_gx = naive_avg_pool_backward(gy, xs, p);
      Tensor gx = Tensor::full(xs, NAN, dtype);
      ops::avg_pool2d_backward(gy, p, gx, false);
      TETHER_CHECK_CLOSE(gx, want_gx, tol, tol);
      // accumulate = true adds to what is there.
      Tensor prior = randn(xs, 1700 + trial, dtype);
      Tensor acc = prior.clone();
      ops::avg_pool2d_backward(gy, p, acc, true);
      TETHER_CHECK_CLOSE(acc, add_t(prior.to(DType::f64), want_gx), tol, tol);
    }
    CHECK(tested > 150);
    CHECK(overhangs > 10);
    CHECK(padded_excluded > 20);
  }

  TEST_CASE("avg_pool2d: count_include_pad divisor and ceil_mode overhang, worked example") {
    // 1x1x3x3 of ones, kernel 2, stride 2, padding 1, ceil_mode: 2x2 output (floor would
    // also give 2). Window (0,0) covers padded rows/cols {-1,0}: 1 real element, 4 padded-in.
    Tensor x = Tensor::ones({1, 1, 3, 3}, DType::f64);
    Pool2dParams p;
    p.kernel = {2, 2};
    p.stride = {2, 2};
    p.padding = {1, 1};
    CHECK(ops::avg_pool2d_forward(x, p).to_vector<double>() == std::vector<double>{0.25, 0.5, 0.5, 1.0});
    p.count_include_pad = false;
    CHECK(ops::avg_pool2d_forward(x, p).to_vector<double>() == std::vector<double>{1, 1, 1, 1});
    // 1x1x4x4, kernel 3, stride 2, no padding, ceil_mode: the second window overhangs by one
    // column/row, which does not count even with count_include_pad.
    Tensor x4 = Tensor::ones({1, 1, 4, 4}, DType::f64);
    Pool2dParams q;
    q.kernel = {3, 3};
    q.stride = {2, 2};
    q.ceil_mode = true;
    q.count_include_pad = true;
    Tensor y = ops::avg_pool2d_forward(x4, q);
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector<double>() == std::vector<double>{1, 1, 1, 1});
  }

  TEST_CASE("adaptive_avg_pool2d matches its bins, including non-divisible and global sizes") {
    const std::vector<std::pair<Shape, std::pair<int64_t, int64_t>>> cases = {
        {{2, 3, 5, 5}, {3, 3}}, {{1, 2, 7, 7}, {7, 7}}, {{2, 2, 7, 5}, {3, 2}}, {{3, 4, 4, 6}, {1, 1}},
        {{1, 1, 3, 3}, {5, 4}}, {{2, 3, 1, 1}, {1, 1}}, {{1, 2, 9, 4}, {4, 3}}, {{2, 5, 7, 7}, {1, 1}},
        {{1, 3, 6, 6}, {2, 3}}};
    int trial = 0;
    for (const auto& [xs, out] : cases) {
      for (DType dtype : {DType::f64, DType::f32}) {
        INFO(shape_str(xs) << " -> " << out.first << "x" << out.second << " " << dtype_name(dtype));
        ++trial;
        const double tol = dtype == DType::f32 ? 1e-6 : 1e-13;
        Tensor x = randn(xs, 2000 + trial).to(dtype);
        Tensor y = ops::adaptive_avg_pool2d_forward(trial % 2 ? strided_copy(x) : x, out.first, out.second);
        TETHER_CHECK_CLOSE(y, naive_adaptive(x, out.first, out.second), tol, tol);
        Tensor gy = randn(y.shape(), 2100 + trial, dtype);
        Tensor want = naive_adaptive_backward(gy, xs);
        Tensor gx = Tensor::full(xs, NAN, dtype);
        ops::adaptive_avg_pool2d_backward(gy, gx, false);
        TETHER_CHECK_CLOSE(gx, want, tol, tol);
        Tensor prior = randn(xs, 2200 + trial, dtype);
        Tensor acc = prior.clone();
        ops::adaptive_avg_pool2d_backward(gy, acc, true);
        TETHER_CHECK_CLOSE(acc, add_t(prior.to(DType::f64), want), tol, tol);
      }
    }
  }

  TEST_CASE("pool backward kernels: accumulate flag and non-contiguous gradient targets") {
    const Shape xs{2, 3, 6, 5};
    Pool2dParams p;
    p.kernel = {3, 2};
    p.stride = {2, 1};
    p.padding = {1, 1};
    Tensor x = tie_heavy(xs, 31, DType::f64);
    Tensor idx;
    Tensor y = ops::max_pool2d_forward(x, p, &idx);
    Tensor gy = randn(y.shape(), 32);
    Tensor fresh = Tensor::zeros(xs, DType::f64);
    ops::max_pool2d_backward(gy, idx, fresh, false);
    // accumulate = true adds onto existing values; false overwrites them.
    Tensor prior = randn(xs, 33);
    Tensor acc = prior.clone();
    ops::max_pool2d_backward(gy, idx, acc, true);
    TETHER_CHECK_CLOSE(acc, add_t(prior, fresh), 1e-14, 1e-14);
    Tensor over = prior.clone();
    ops::max_pool2d_backward(gy, idx, over, false);
    CHECK(over.to_vector<double>() == fresh.to_vector<double>());
    // A non-contiguous grad_x (NCHW view of NHWC storage), both ways.
    for (bool accumulate : {false, true}) {
      CAPTURE(accumulate);
      Tensor target = strided_copy(prior);
      ops::max_pool2d_backward(gy, idx, target, accumulate);
      TETHER_CHECK_CLOSE(target, accumulate ? add_t(prior, fresh) : fresh, 1e-14, 1e-14);
      Tensor t2 = strided_copy(prior);
      ops::avg_pool2d_backward(ops::avg_pool2d_forward(x, p), p, t2, accumulate);
      Tensor ref2 = Tensor::zeros(xs, DType::f64);
      ops::avg_pool2d_backward(ops::avg_pool2d_forward(x, p), p, ref2, false);
      TETHER_CHECK_CLOSE(t2, accumulate ? add_t(prior, ref2) : ref2, 1e-14, 1e-14);
      Tensor t3 = strided_copy(prior);
      Tensor gg = randn({2, 3, 1, 1}, 34);
      ops::adaptive_avg_pool2d_backward(gg, t3, accumulate);
      TETHER_CHECK_CLOSE(t3, accumulate ? add_t(prior, naive_adaptive_backward(gg, xs)) : naive_adaptive_backward(gg, xs),
                         1e-14, 1e-14);
    }
    // Non-contiguous grad_y.
    Tensor gy_strided = strided_copy(gy);
    Tensor g2 = Tensor::zeros(xs, DType::f64);
    ops::max_pool2d_backward(gy_strided, idx, g2, false);
    CHECK(g2.to_vector<double>() == fresh.to_vector<double>());
  }

  TEST_CASE("batch_norm forward: training statistics, running-stat update, eval, [N, C] inputs") {
    const double eps = 1e-5, momentum = 0.3;
    int trial = 0;
    for (const Shape& xs : std::vector<Shape>{{4, 3}, {2, 3, 4, 5}, {3, 1, 1, 1}, {1, 2, 3, 3}, {7, 5}, {2, 4, 1, 3}}) {
      for (DType dtype : {DType::f64, DType::f32}) {
        for (bool affine : {true, false}) {
          ++trial;
          INFO(shape_str(xs) << " " << dtype_name(dtype) << " affine " << affine);
          const int64_t C = xs[1], M = shape_numel(xs) / C;
          const double tol = dtype == DType::f32 ? 2e-5 : 1e-11;
          Tensor x = ops::add_scalar(ops::mul_scalar(randn(xs, 3000 + trial), 2.0), 0.5).to(dtype);
          Tensor w = affine ? randn({C}, 3100 + trial).to(dtype) : Tensor();
          Tensor b = affine ? randn({C}, 3200 + trial).to(dtype) : Tensor();
          std::vector<double> wv(C, 1.0), bv(C, 0.0);
          if (affine) wv = w.to_vector<double>(), bv = b.to_vector<double>();
          Tensor rm = randn({C}, 3300 + trial).to(dtype);
          Tensor rv = uniform({C}, 0.5, 2.0, 3400 + trial).to(dtype);
          const std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();

          // Training: batch statistics; running stats move by momentum, var unbiased.
          Tensor sm, si;
          Tensor y = ops::batch_norm_forward(x, w, b, rm, rv, true, momentum, eps, &sm, &si);
          const NaiveBn want = naive_bn(x, wv, bv, true, {}, {}, eps);
          TETHER_CHECK_CLOSE(y, want.y, tol, tol);
          std::vector<double> want_rm(C), want_rv(C), want_invstd(C);
          for (int64_t c = 0; c < C; ++c) {
            want_rm[c] = (1 - momentum) * rm0[c] + momentum * want.mean[c];
            want_rv[c] = (1 - momentum) * rv0[c] + momentum * want.var[c] * M / (M - 1);
            want_invstd[c] = 1 / std::sqrt(want.var[c] + eps);
          }
          TETHER_CHECK_CLOSE(rm, f64_tensor(want_rm, {C}), tol, tol);
          TETHER_CHECK_CLOSE(rv, f64_tensor(want_rv, {C}), tol, tol);
          TETHER_CHECK_CLOSE(sm, f64_tensor(want.mean, {C}), tol, tol);
          TETHER_CHECK_CLOSE(si, f64_tensor(want_invstd, {C}), tol, tol);
          CHECK(sm.dtype() == dtype);

          // Eval: the (now updated) running statistics, left unchanged.
          const std::vector<double> rm1 = rm.to_vector<double>(), rv1 = rv.to_vector<double>();
          Tensor ye = ops::batch_norm_forward(x, w, b, rm, rv, false, momentum, eps, &sm, &si);
          TETHER_CHECK_CLOSE(ye, naive_bn(x, wv, bv, false, rm1, rv1, eps).y, tol, tol);
          CHECK(rm.to_vector<double>() == rm1);
          CHECK(rv.to_vector<double>() == rv1);
          TETHER_CHECK_CLOSE(sm, f64_tensor(rm1, {C}), tol, tol);

          // Training without running statistics works too.
          Tensor y2 = ops::batch_norm_forward(x, w, b, Tensor(), Tensor(), true, momentum, eps, nullptr, nullptr);
          TETHER_CHECK_CLOSE(y2, want.y, tol, tol);
        }
      }
    }
    // Non-contiguous input gives the same result.
    Tensor x = randn({3, 4, 5, 2}, 3500);
    Tensor a = ops::batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, nullptr, nullptr);
    Tensor c = ops::batch_norm_forward(strided_copy(x), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5,
                                       nullptr, nullptr);
    TETHER_CHECK_CLOSE(c, a, 1e-14, 1e-14);
  }

  TEST_CASE("batch_norm forward: f32 statistics stay accurate when |mean| >> std") {
    // x = 1000 + 0.01 z in f32: the reference uses the exact same f32 values in double.
    Tensor x = ops::add_scalar(ops::mul_scalar(randn({8, 2, 6, 6}, 3600), 0.01), 1000.0).to(DType::f32);
    Tensor sm, si;
    ops::batch_norm_forward(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0, &sm, &si);
    const NaiveBn want = naive_bn(x, {1, 1}, {0, 0}, true, {}, {}, 0.0);
    std::vector<double> invstd{1 / std::sqrt(want.var[0]), 1 / std::sqrt(want.var[1])};
    TETHER_CHECK_CLOSE(si, f64_tensor(invstd, {2}), 1e-6, 0);
    TETHER_CHECK_CLOSE(sm, f64_tensor(want.mean, {2}), 1e-7, 0);
  }

  TEST_CASE("batch_norm backward: training and eval, any subset of gradients, accumulate") {
    const double eps = 1e-3;
    int trial = 0;
    for (const Shape& xs : std::vector<Shape>{{5, 3}, {2, 3, 4, 5}, {3, 2, 1, 1}, {2, 4, 3, 1}}) {
      for (DType dtype : {DType::f64, DType::f32}) {
        for (bool training : {true, false}) {
          ++trial;
          INFO(shape_str(xs) << " " << dtype_name(dtype) << " training " << training);
          const int64_t C = xs[1];
          const double tol = dtype == DType::f32 ? 1e-4 : 1e-10;
          Tensor x = randn(xs, 4000 + trial).to(dtype);
          Tensor w = randn({C}, 4100 + trial).to(dtype);
          Tensor b = randn({C}, 4200 + trial).to(dtype);
          Tensor rm = randn({C}, 4300 + trial).to(dtype);
          Tensor rv = uniform({C}, 0.5, 2.0, 4400 + trial).to(dtype);
          Tensor sm, si;
          ops::batch_norm_forward(x, w, b, rm.clone(), rv.clone(), training, 0.1, eps, &sm, &si);
          // The statistics the gradient flows through: the batch's (naive) or the running ones.
          const NaiveBn stats = naive_bn(x, std::vector<double>(C, 1.0), std::vector<double>(C, 0.0), true, {}, {}, eps);
          const std::vector<double> mean = training ? stats.mean : rm.to_vector<double>();
          const std::vector<double> var = training ? stats.var : rv.to_vector<double>();
          Tensor gy = randn(xs, 4500 + trial, dtype);
          const NaiveBnGrads want = naive_bn_backward(gy, x, w.to_vector<double>(), mean, var, eps, training);
          // All three, overwriting NaN-filled buffers.
          Tensor gx = Tensor::full(xs, NAN, dtype), gw = Tensor::full({C}, NAN, dtype), gb = Tensor::full({C}, NAN, dtype);
          ops::batch_norm_backward(gy, x, w, sm, si, training, gx, gw, gb, false);
          TETHER_CHECK_CLOSE(gx, want.gx, tol, tol);
          TETHER_CHECK_CLOSE(gw, want.gw, tol, tol);
          TETHER_CHECK_CLOSE(gb, want.gb, tol, tol);
          // Accumulate onto prior values.
          Tensor px = randn(xs, 4600 + trial, dtype), pw = randn({C}, 4700 + trial, dtype), pb = randn({C}, 4800 + trial, dtype);
          Tensor ax = px.clone(), aw = pw.clone(), ab = pb.clone();
          ops::batch_norm_backward(gy, x, w, sm, si, training, ax, aw, ab, true);
          TETHER_CHECK_CLOSE(ax, add_t(px.to(DType::f64), want.gx), tol, tol);
          TETHER_CHECK_CLOSE(aw, add_t(pw.to(DType::f64), want.gw), tol, tol);
          TETHER_CHECK_CLOSE(ab, add_t(pb.to(DType::f64), want.gb), tol, tol);
          // One at a time (the others undefined), grad_x also non-contiguous when 4-D.
          Tensor only_x = xs.size() == 4 ? strided_copy(px) : Tensor::full(xs, NAN, dtype);
          ops::batch_norm_backward(gy, x, w, sm, si, training, only_x, Tensor(), Tensor(), xs.size() == 4);
          TETHER_CHECK_CLOSE(only_x, xs.size() == 4 ? add_t(px.to(DType::f64), want.gx) : want.gx, tol, tol);
          Tensor only_w = Tensor::full({C}, NAN, dtype);
          ops::batch_norm_backward(gy, x, w, sm, si, training, Tensor(), only_w, Tensor(), false);
          TETHER_CHECK_CLOSE(only_w, want.gw, tol, tol);
          Tensor only_b = Tensor::full({C}, NAN, dtype);
          ops::batch_norm_backward(gy, x, w, sm, si, training, Tensor(), Tensor(), only_b, false);
          TETHER_CHECK_CLOSE(only_b, want.gb, tol, tol);
          // No weight: as if all ones.
          Tensor gx1 = Tensor::empty(xs, dtype);
          ops::batch_norm_backward(gy, x, Tensor(), sm, si, training, gx1, Tensor(), Tensor(), false);
          const NaiveBnGrads want1 = naive_bn_backward(gy, x, std::vector<double>(C, 1.0), mean, var, eps, training);
          TETHER_CHECK_CLOSE(gx1, want1.gx, tol, tol);
        }
      }
    }
  }

  TEST_CASE("inputs large enough for the OpenMP paths agree with the naive versions") {
    // >= 32768 elements (kParallelGrain): planes/channels are split across threads.
    const Shape xs{2, 8, 48, 44};
    Pool2dParams p;
    p.kernel = {3, 3};
    p.stride = {2, 2};
    p.padding = {1, 1};
    p.ceil_mode = true;
    Tensor x = randn(xs, 5000);
    Tensor idx;
    Tensor y = ops::max_pool2d_forward(x, p, &idx);
    const NaivePool want = naive_max_pool(x, p);
    CHECK(y.to_vector<double>() == want.y);
    CHECK(idx.to_vector<int64_t>() == want.idx);
    Tensor gy = randn(y.shape(), 5001);
    Tensor gx = Tensor::zeros(xs, DType::f64);
    ops::avg_pool2d_backward(gy, p, gx, false);
    TETHER_CHECK_CLOSE(gx, naive_avg_pool_backward(gy, xs, p), 1e-13, 1e-13);
    TETHER_CHECK_CLOSE(ops::avg_pool2d_forward(x, p), f64_tensor(naive_avg_pool(x, p).y, y.shape()), 1e-13, 1e-13);
    for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 3}}) {
      Tensor ya = ops::adaptive_avg_pool2d_forward(x, oh, ow);
      TETHER_CHECK_CLOSE(ya, naive_adaptive(x, oh, ow), 1e-13, 1e-13);
      Tensor ga = randn(ya.shape(), 5002);
      Tensor gxa = Tensor::empty(xs, DType::f64);
      ops::adaptive_avg_pool2d_backward(ga, gxa, false);
      TETHER_CHECK_CLOSE(gxa, naive_adaptive_backward(ga, xs), 1e-13, 1e-13);
    }
    // Batch norm, f32 (sums in double) against the f64 reference on the same values.
    Tensor xb = randn(xs, 5003, DType::f32);
    Tensor w = randn({8}, 5004, DType::f32), b = randn({8}, 5005, DType::f32);
    Tensor sm, si;
    Tensor yb = ops::batch_norm_forward(xb, w, b, Tensor(), Tensor(), true, 0.1, 1e-5, &sm, &si);
    const NaiveBn want_bn = naive_bn(xb, w.to_vector<double>(), b.to_vector<double>(), true, {}, {}, 1e-5);
    TETHER_CHECK_CLOSE(yb, want_bn.y, 1e-5, 1e-5);
    Tensor gyb = randn(xs, 5006, DType::f32);
    Tensor gxb = Tensor::empty(xs, DType::f32), gw = Tensor::empty({8}, DType::f32), gb = Tensor::empty({8}, DType::f32);
    ops::batch_norm_backward(gyb, xb, w, sm, si, true, gxb, gw, gb, false);
    const NaiveBnGrads want_g = naive_bn_backward(gyb, xb, w.to_vector<double>(), want_bn.mean, want_bn.var, 1e-5, true);
    TETHER_CHECK_CLOSE(gxb, want_g.gx, 1e-4, 1e-5);
    TETHER_CHECK_CLOSE(gw, want_g.gw, 1e-4, 1e-4);
    TETHER_CHECK_CLOSE(gb, want_g.gb, 1e-4, 1e-4);
  }

  TEST_CASE("pooling and batch_norm argument errors are readable") {
    Pool2dParams p;
    p.kernel = {2, 2};
    Tensor x = Tensor::zeros({1, 2, 4, 4});
    CHECK_THROWS_WITH_AS(ops::max_pool2d_forward(Tensor::zeros({2, 4, 4}), p, nullptr),
                         doctest::Contains("input must be [N, C, H, W]"), Error);
    Pool2dParams bad_pad = p;
    bad_pad.padding = {2, 0};
    CHECK_THROWS_WITH_AS(ops::avg_pool2d_forward(x, bad_pad), doctest::Contains("at most half the kernel size"), Error);
    // A 4-wide window over 1 + 2*1 padded columns with stride 2: PyTorch rejects it (the
    // output would be empty) even though truncating division would round -1/2 up to 0.
    Pool2dParams wide;
    wide.kernel = {1, 4};
    wide.stride = {1, 2};
    wide.padding = {0, 1};
    CHECK_THROWS_WITH_AS(ops::max_pool2d_forward(Tensor::zeros({1, 1, 3, 1}), wide, nullptr),
                         doctest::Contains("the output would be empty"), Error);
    Pool2dParams dil = p;
    dil.dilation = {2, 1};
    CHECK_THROWS_WITH_AS(ops::avg_pool2d_forward(x, dil), doctest::Contains("dilation is not supported"), Error);
    CHECK_THROWS_WITH_AS(ops::max_pool2d_forward(Tensor::zeros({1, 1, 4, 4}, DType::i64), p, nullptr),
                         doctest::Contains("expected a floating tensor"), Error);
    Tensor idx;
    Tensor y = ops::max_pool2d_forward(x, p, &idx);
    CHECK_THROWS_WITH_AS(ops::max_pool2d_backward(y, idx.to(DType::f32), Tensor::zeros(x.shape()), false),
                         doctest::Contains("indices must be i64"), Error);
    CHECK_THROWS_WITH_AS(ops::max_pool2d_backward(y, idx, Tensor::zeros({1, 3, 4, 4}), false),
                         doctest::Contains("does not match grad_x"), Error);
    Tensor corrupt = ops::add_scalar(idx.to(DType::f64), 100.0).to(DType::i64);
    CHECK_THROWS_WITH_AS(ops::max_pool2d_backward(y, corrupt, Tensor::zeros(x.shape()), false),
                         doctest::Contains("indices outside"), Error);
    CHECK_THROWS_WITH_AS(ops::avg_pool2d_backward(Tensor::zeros({1, 2, 2, 2}), p, Tensor::zeros(x.shape()), false),
                         doctest::Contains("pooling [1, 2, 4, 4] gives [1, 2, 3, 3]"), Error);
    CHECK_THROWS_WITH_AS(ops::avg_pool2d_backward(y.to(DType::f64), p, Tensor::zeros(x.shape()), false),
                         doctest::Contains("grad_y is f64 but grad_x is f32"), Error);
    CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d_forward(Tensor::zeros({2, 4, 4}), 2, 2), doctest::Contains("adaptive_avg_pool2d"),
                         Error);
    CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d_forward(x, 0, 2), doctest::Contains("adaptive_avg_pool2d"), Error);

    Tensor c3 = Tensor::ones({3});
    CHECK_THROWS_WITH_AS(ops::batch_norm_forward(Tensor::zeros({2, 3, 4}), c3, c3, c3, c3, true, 0.1, 1e-5, nullptr, nullptr),
                         doctest::Contains("input must be [N, C] or [N, C, H, W]"), Error);
    CHECK_THROWS_WITH_AS(ops::batch_norm_forward(Tensor::zeros({2, 4}), c3, c3, Tensor(), Tensor(), true, 0.1, 1e-5,
                                                 nullptr, nullptr),
                         doctest::Contains("for 4 channels"), Error);
    CHECK_THROWS_WITH_AS(ops::batch_norm_forward(Tensor::zeros({2, 3}), c3, c3, Tensor(), Tensor(), false, 0.1, 1e-5,
                                                 nullptr, nullptr),
                         doctest::Contains("eval mode needs running"), Error);
    CHECK_THROWS_WITH_AS(ops::batch_norm_forward(Tensor::zeros({1, 3}), c3, c3, c3, c3, true, 0.1, 1e-5, nullptr, nullptr),
                         doctest::Contains("more than 1 value per channel"), Error);
    Tensor sm, si;
    Tensor xb = randn({4, 3}, 1, DType::f32);
    ops::batch_norm_forward(xb, c3, c3, Tensor(), Tensor(), true, 0.1, 1e-5, &sm, &si);
    CHECK_THROWS_WITH_AS(ops::batch_norm_backward(Tensor::zeros({4, 2}), xb, c3, sm, si, true, Tensor::zeros({4, 3}),
                                                  Tensor(), Tensor(), false),
                         doctest::Contains("batch_norm_backward: grad_y"), Error);
    CHECK_THROWS_WITH_AS(ops::batch_norm_backward(Tensor::zeros({4, 3}), xb, c3, sm, si, true, Tensor::zeros({4, 3}),
                                                  Tensor::zeros({2}), Tensor(), false),
                         doctest::Contains("grad_weight must be [3]"), Error);
    CHECK_THROWS_WITH_AS(ops::batch_norm_backward(Tensor::zeros({4, 3}), xb, c3, Tensor(), si, true,
                                                  Tensor::zeros({4, 3}), Tensor(), Tensor(), false),
                         doctest::Contains("save_mean and save_invstd"), Error);
  }
}
