// CPU-vs-CUDA differential tests of the op front's copies, elementwise maps, reductions and
// random fills (core/ops.h): the same inputs on both devices, random shapes from seeded draws,
// f32 and f64, contiguous and strided operands and outputs, NaN and infinities; backward
// helpers overwriting and accumulating. The CPU kernels are the reference (tests/ops/ check
// them against definitions). Networks' kernels (GEMM, conv, pooling, BN, softmax, loss) are in
// test_cuda_nn_ops.cpp.
#include "tests/cuda/cuda_test_util.h"

using namespace tether;
using namespace tether::cudatest;
using ops::Binary;
using ops::Unary;

namespace {

constexpr Unary kUnary[] = {Unary::neg,     Unary::exp,  Unary::log,  Unary::sqrt,   Unary::abs,
                            Unary::sign,    Unary::relu, Unary::sigmoid, Unary::silu, Unary::tanh,
                            Unary::square,  Unary::reciprocal};
constexpr Binary kBinary[] = {Binary::add, Binary::sub,     Binary::mul,    Binary::div,
                              Binary::pow, Binary::maximum, Binary::minimum};
constexpr DType kFloat[] = {DType::f32, DType::f64};
constexpr DType kAll[] = {DType::f32, DType::f64, DType::i64, DType::u8};

// Values in each op's domain: positive for log and sqrt, away from 0 for reciprocal.
Tensor unary_input(Unary op, const Shape& shape, uint64_t seed, DType dtype) {
  Tensor x = ops::mul_scalar(testing::randn(shape, seed, DType::f64), 2.0);
  if (op == Unary::log || op == Unary::sqrt) x = ops::add_scalar(ops::unary(Unary::abs, x), 0.1);
  if (op == Unary::reciprocal) x = ops::binary(Binary::add, x, ops::mul_scalar(ops::unary(Unary::sign, x), 0.1));
  return ops::cast(x, dtype);
}

// NaN, infinities, signed zeros and large values (finite in f32).
Tensor specials(DType dtype) {
  const std::vector<double> v = {kNaN, kInf, -kInf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 30.0, -30.0, 1e10, -1e10};
  return ops::cast(Tensor::from_vector(v, {static_cast<int64_t>(v.size())}), dtype);
}

// Values exactly representable in every dtype (integers in [0, 200)), for exact casts.
Tensor castable(const Shape& shape, uint64_t seed, DType dtype) {
  Tensor u = testing::uniform(shape, 0.0, 200.0, seed);
  std::vector<double> v = u.to_vector<double>();
  for (double& e : v) e = std::floor(e);
  return ops::cast(Tensor::from_vector(v, shape), dtype);
}

// Two shapes that broadcast: b is a suffix of a with some dims set to 1 (or the reverse).
std::pair<Shape, Shape> broadcast_pair(Draw& draw) {
  Shape a = draw.shape(static_cast<int>(draw(1, 4)), 1, 6);
  Shape b(a.end() - draw(0, static_cast<int64_t>(a.size())), a.end());
  for (int64_t& d : b)
    if (draw.coin()) d = 1;
  if (draw.coin()) std::swap(a, b);
  return {a, b};
}

// The absolute tolerance of special-value tests: the smallest normal number, so results in the
// subnormal range (pow(30, -30) in f32) may differ in their last bits.
double tiny(DType dtype) {
  return dtype == DType::f32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
}

std::string name_of(Unary op) { return "unary op " + std::to_string(static_cast<int>(op)); }
std::string name_of(Binary op) { return "binary op " + std::to_string(static_cast<int>(op)); }

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("copy_, cast and fill_: every dtype pair, strided sources and destinations") {
    TETHER_REQUIRE_GPU("copy_/cast/fill_");
    Draw draw(1);
    uint64_t seed = 100;
    for (int round = 0; round < 3; ++round) {
      const Shape shape = draw.shape(static_cast<int>(draw(1, 4)), 1, 7);
      CAPTURE(shape_str(shape));
      for (DType from : kAll)
        for (DType to : kAll) {
          CAPTURE(std::string(dtype_name(from)));
          CAPTURE(std::string(dtype_name(to)));
          const Tensor values = castable(shape, ++seed, from);
          for (Layout ls : layouts_for(static_cast<int>(shape.size()))) {
            const Pair src = laid(values, ls);
            expect_match(std::string("cast from ") + layout_name(ls), map(src, [to](const Tensor& t) {
                           return ops::cast(t, to);
                         }), 0.0);
            expect_match(std::string("contiguous of ") + layout_name(ls), map(src, [](const Tensor& t) {
                           return ops::contiguous(t);
                         }), 0.0);
            for (Layout ld : layouts_for(static_cast<int>(shape.size()))) {
              CAPTURE(std::string(layout_name(ld)));
              Laid dst = lay_out(Tensor::zeros(shape, to), ld, /*fill=*/3.0);
              ops::copy_(dst.view.cpu, src.cpu);
              ops::copy_(dst.view.gpu, src.gpu);
              expect_match(std::string("copy_ from ") + layout_name(ls), dst.buffer, 0.0);
            }
          }
          // A broadcast (stride 0) source.
          Shape one = shape;
          one[0] = 1;
          const Pair b = pair_of(castable(one, ++seed, from));
          Pair dst = pair_of(Tensor::zeros(shape, to));
          ops::copy_(dst.cpu, ops::expand(b.cpu, shape));
          ops::copy_(dst.gpu, ops::expand(b.gpu, shape));
          expect_match("copy_ from an expanded source", dst, 0.0);
        }
      for (DType dtype : kAll)
        for (Layout l : layouts_for(static_cast<int>(shape.size()))) {
          Laid dst = lay_out(Tensor::zeros(shape, dtype), l, /*fill=*/5.0);
          ops::fill_(dst.view.cpu, dtype == DType::u8 ? 7.0 : -2.5);
          ops::fill_(dst.view.gpu, dtype == DType::u8 ? 7.0 : -2.5);
          expect_match(std::string("fill_ ") + dtype_name(dtype) + " " + layout_name(l), dst.buffer, 0.0);
        }
    }
    // cat on the GPU: copies into narrowed views.
    const Pair a = randn2({2, 3, 4}, 1, DType::f32), b = randn2({2, 5, 4}, 2, DType::f32);
    expect_match("cat", ops::cat({a.gpu, ops::transpose(ops::transpose(b.gpu, 0, 2), 0, 2)}, 1),
                 ops::cat({a.cpu, b.cpu}, 1), 0.0);
  }

  TEST_CASE("unary ops: every op, f32/f64, strided inputs, special values") {
    TETHER_REQUIRE_GPU("unary ops");
    Draw draw(2);
    for (Unary op : kUnary)
      for (DType dtype : kFloat)
        for (int round = 0; round < 3; ++round) {
          CAPTURE(name_of(op));
          CAPTURE(std::string(dtype_name(dtype)));
          // One large draw: many blocks and a grid-stride loop.
          const Shape shape = round == 0 ? Shape{515, 1031} : draw.shape(static_cast<int>(draw(0, 4)), 1, 9);
          CAPTURE(shape_str(shape));
          const Tensor values = unary_input(op, shape, 10 + round, dtype);
          for (Layout l : layouts_for(static_cast<int>(shape.size())))
            expect_match(name_of(op) + " on " + layout_name(l),
                         map(laid(values, l), [op](const Tensor& t) { return ops::unary(op, t); }), tol_of(dtype));
          const Pair s = pair_of(specials(dtype));
          expect_match(name_of(op) + " of NaN, infinities and signed zeros",
                       map(s, [op](const Tensor& t) { return ops::unary(op, t); }), tol_of(dtype), tiny(dtype));
        }
  }

  TEST_CASE("binary ops: every op, broadcasting, strided and 0-d operands, special values") {
    TETHER_REQUIRE_GPU("binary ops");
    Draw draw(3);
    uint64_t seed = 200;
    for (Binary op : kBinary)
      for (DType dtype : kFloat)
        for (int round = 0; round < 6; ++round) {
          CAPTURE(name_of(op));
          CAPTURE(std::string(dtype_name(dtype)));
          auto [sa, sb] = round == 0 ? std::pair<Shape, Shape>{{300, 1, 257}, {7, 257}} : broadcast_pair(draw);
          if (round == 1) sb = {};  // a 0-d operand
          CAPTURE(shape_str(sa));
          CAPTURE(shape_str(sb));
          Tensor a = testing::randn(sa, ++seed, dtype), b = testing::randn(sb, ++seed, dtype);
          if (op == Binary::pow) a = ops::add_scalar(ops::unary(Unary::abs, a), 0.1);  // real powers
          if (op == Binary::div) b = ops::binary(Binary::add, b, ops::mul_scalar(ops::unary(Unary::sign, b), 0.1));
          for (Layout la : layouts_for(static_cast<int>(sa.size())))
            for (Layout lb : {Layout::contiguous, Layout::every_other}) {
              CAPTURE(std::string(layout_name(la)));
              CAPTURE(std::string(layout_name(lb)));
              const Pair pa = laid(a, la), pb = sb.empty() ? pair_of(b) : laid(b, lb);
              expect_match(name_of(op), {ops::binary(op, pa.gpu, pb.gpu), ops::binary(op, pa.cpu, pb.cpu)},
                           tol_of(dtype));
            }
        }
    // Every pair of special values (NaN propagation of maximum/minimum, pow's edge cases).
    for (Binary op : kBinary)
      for (DType dtype : kFloat) {
        CAPTURE(name_of(op));
        const Tensor s = specials(dtype);
        const int64_t n = s.numel();
        const Pair a = pair_of(ops::contiguous(ops::expand(ops::reshape(s, {n, 1}), {n, n})));
        const Pair b = pair_of(s);
        expect_match(name_of(op) + " of special values", {ops::binary(op, a.gpu, b.gpu), ops::binary(op, a.cpu, b.cpu)},
                     tol_of(dtype), tiny(dtype));
      }
  }

  TEST_CASE("scalar ops and clamp, one-sided and with NaN") {
    TETHER_REQUIRE_GPU("add_scalar/mul_scalar/pow_scalar/clamp");
    Draw draw(4);
    for (DType dtype : kFloat)
      for (int round = 0; round < 4; ++round) {
        CAPTURE(std::string(dtype_name(dtype)));
        const Shape shape = round == 0 ? Shape{1 << 19} : draw.shape(static_cast<int>(draw(1, 4)), 1, 8);
        CAPTURE(shape_str(shape));
        const Tensor x = testing::randn(shape, 300 + round, dtype);
        const Tensor pos = ops::add_scalar(ops::unary(Unary::abs, x), 0.1);
        const double tol = tol_of(dtype);
        for (Layout l : layouts_for(static_cast<int>(shape.size()))) {
          CAPTURE(std::string(layout_name(l)));
          const Pair p = laid(x, l), q = laid(pos, l);
          expect_match("add_scalar", map(p, [](const Tensor& t) { return ops::add_scalar(t, -1.25); }), tol);
          expect_match("mul_scalar", map(p, [](const Tensor& t) { return ops::mul_scalar(t, 3.5); }), tol);
          for (double e : {2.0, 3.0, 0.5, -1.5})
            expect_match("pow_scalar " + std::to_string(e), map(q, [e](const Tensor& t) { return ops::pow_scalar(t, e); }),
                         tol);
          expect_match("pow_scalar 2 of negatives", map(p, [](const Tensor& t) { return ops::pow_scalar(t, 2.0); }), tol);
          for (auto [lo, hi] : std::vector<std::pair<double, double>>{{-0.5, 0.7}, {-kInf, 0.2}, {-0.3, kInf}, {0.1, 0.1}})
            expect_match("clamp " + std::to_string(lo) + " " + std::to_string(hi),
                         map(p, [lo = lo, hi = hi](const Tensor& t) { return ops::clamp(t, lo, hi); }), tol);
        }
        const Pair s = pair_of(specials(dtype));
        expect_match("clamp of special values", map(s, [](const Tensor& t) { return ops::clamp(t, -1.0, 2.0); }), 0.0);
        expect_match("add_scalar of special values", map(s, [](const Tensor& t) { return ops::add_scalar(t, 1.0); }), 0.0);
      }
  }

  TEST_CASE("unary_backward (with x, with y only) and clamp_backward") {
    TETHER_REQUIRE_GPU("unary_backward/clamp_backward");
    Draw draw(5);
    for (Unary op : kUnary)
      for (DType dtype : kFloat)
        for (int round = 0; round < 3; ++round) {
          CAPTURE(name_of(op));
          CAPTURE(std::string(dtype_name(dtype)));
          const Shape shape = round == 0 ? Shape{3, 70001} : draw.shape(static_cast<int>(draw(1, 4)), 1, 8);
          CAPTURE(shape_str(shape));
          const Tensor xv = unary_input(op, shape, 400 + round, dtype);
          const Pair x = pair_of(xv), y = map(x, [op](const Tensor& t) { return ops::unary(op, t); });
          for (Layout l : layouts_for(static_cast<int>(shape.size()))) {
            CAPTURE(std::string(layout_name(l)));
            const Pair g = laid(testing::randn(shape, 500 + round, dtype), l);
            const Pair xs = laid(xv, l);  // strided x too
            expect_match(name_of(op) + " backward", {ops::unary_backward(op, g.gpu, xs.gpu, y.gpu),
                                                      ops::unary_backward(op, g.cpu, xs.cpu, y.cpu)},
                         tol_of(dtype));
            if (ops::derivative_needs_only_output(op))
              expect_match(name_of(op) + " backward from y alone",
                           {ops::unary_backward(op, g.gpu, Tensor(), y.gpu), ops::unary_backward(op, g.cpu, Tensor(), y.cpu)},
                           tol_of(dtype));
          }
        }
    for (DType dtype : kFloat) {
      const Shape shape{9, 13};
      const Tensor xv = testing::randn(shape, 600, dtype);
      for (Layout l : layouts_for(2)) {
        const Pair x = laid(xv, l), g = laid(testing::randn(shape, 601, dtype), Layout::transposed);
        for (auto [lo, hi] : std::vector<std::pair<double, double>>{{-0.5, 0.7}, {-kInf, 0.2}, {-0.3, kInf}})
          expect_match("clamp_backward", {ops::clamp_backward(g.gpu, x.gpu, lo, hi), ops::clamp_backward(g.cpu, x.cpu, lo, hi)},
                       0.0);
      }
      // Boundary values (lo and hi themselves pass the gradient) and NaN.
      const Pair x = pair_of(ops::cast(Tensor::from_vector(std::vector<double>{-0.5, 0.7, kNaN, 0.0, -1.0, 2.0}, {6}), dtype));
      const Pair g = randn2({6}, 602, dtype);
      expect_match("clamp_backward at the bounds",
                   {ops::clamp_backward(g.gpu, x.gpu, -0.5, 0.7), ops::clamp_backward(g.cpu, x.cpu, -0.5, 0.7)}, 0.0);
    }
  }

  TEST_CASE("axpy_ and scale_ on contiguous and strided tensors") {
    TETHER_REQUIRE_GPU("axpy_/scale_");
    Draw draw(6);
    for (DType dtype : kFloat)
      for (int round = 0; round < 4; ++round) {
        CAPTURE(std::string(dtype_name(dtype)));
        const Shape shape = round == 0 ? Shape{1 << 20} : draw.shape(static_cast<int>(draw(1, 4)), 1, 8);
        CAPTURE(shape_str(shape));
        const Tensor xv = testing::randn(shape, 700 + round, dtype);
        for (Layout ly : layouts_for(static_cast<int>(shape.size())))
          for (Layout lx : layouts_for(static_cast<int>(shape.size()))) {
            CAPTURE(std::string(layout_name(ly)));
            CAPTURE(std::string(layout_name(lx)));
            Laid y = lay_out(testing::randn(shape, 800 + round, dtype), ly, /*fill=*/9.0);
            const Pair x = laid(xv, lx);
            ops::axpy_(y.view.cpu, -0.75, x.cpu);
            ops::axpy_(y.view.gpu, -0.75, x.gpu);
            expect_match("axpy_", y.buffer, tol_of(dtype));
            ops::scale_(y.view.cpu, 1.5);
            ops::scale_(y.view.gpu, 1.5);
            expect_match("scale_", y.buffer, tol_of(dtype));
          }
      }
  }

  TEST_CASE("sum, mean, amax, argmax over dims (keepdim both ways), ties and NaN") {
    TETHER_REQUIRE_GPU("sum/mean/amax/argmax");
    Draw draw(7);
    for (DType dtype : kFloat)
      for (int round = 0; round < 8; ++round) {
        CAPTURE(std::string(dtype_name(dtype)));
        const Shape shape = round == 0   ? Shape{3, 200003}
                            : round == 1 ? Shape{70001, 5}
                                         : draw.shape(static_cast<int>(draw(1, 4)), 1, 9);
        CAPTURE(shape_str(shape));
        const int rank = static_cast<int>(shape.size());
        Tensor xv = testing::randn(shape, 900 + round, dtype);
        if (round % 3 == 2) xv = ops::cast(ops::unary(Unary::sign, xv), dtype);  // many ties
        std::vector<std::vector<int>> dim_sets = {{}, {0}, {-1}};
        for (int d = 0; d < rank; ++d) dim_sets.push_back({d});
        if (rank >= 2) dim_sets.push_back({0, rank - 1});
        if (rank >= 3) dim_sets.push_back({-1, 1});
        const double tol = tol_of(dtype);
        for (Layout l : layouts_for(rank)) {
          CAPTURE(std::string(layout_name(l)));
          const Pair x = laid(xv, l);
          for (const std::vector<int>& dims : dim_sets)
            for (bool keepdim : {false, true}) {
              CAPTURE(dims.size());
              CAPTURE(dims.empty() ? 99 : dims[0]);
              CAPTURE(keepdim);
              expect_match("sum", map(x, [&](const Tensor& t) { return ops::sum(t, dims, keepdim); }), tol);
              expect_match("mean", map(x, [&](const Tensor& t) { return ops::mean(t, dims, keepdim); }), tol);
              expect_match("amax", map(x, [&](const Tensor& t) { return ops::amax(t, dims, keepdim); }), 0.0);
              if (dims.size() == 1)
                expect_match("argmax", map(x, [&](const Tensor& t) { return ops::argmax(t, dims[0], keepdim); }), 0.0);
            }
        }
      }
    // NaN: amax propagates it, argmax points at the first NaN.
    for (DType dtype : kFloat) {
      Tensor v = testing::randn({4, 6}, 950, DType::f64);
      std::vector<double> e = v.to_vector<double>();
      e[3] = e[9] = e[10] = kNaN;
      const Pair x = pair_of(ops::cast(Tensor::from_vector(e, {4, 6}), dtype));
      for (int d : {0, 1}) {
        expect_match("amax with NaN", map(x, [d](const Tensor& t) { return ops::amax(t, {d}); }), 0.0);
        expect_match("argmax with NaN", map(x, [d](const Tensor& t) { return ops::argmax(t, d); }), 0.0);
      }
      expect_match("sum with NaN", map(x, [](const Tensor& t) { return ops::sum(t, {1}); }), tol_of(dtype));
    }
    // sum_to: the reduction of broadcast gradients.
    const Pair g = randn2({4, 3, 5}, 960, DType::f32);
    expect_match("sum_to", map(g, [](const Tensor& t) { return ops::sum_to(t, {3, 1}); }), 1e-5);
  }

  TEST_CASE("sum_all, dot and norm (p = 1, 2, 3, inf) return the CPU's doubles") {
    TETHER_REQUIRE_GPU("sum_all/dot/norm");
    Draw draw(8);
    for (DType dtype : kFloat)
      for (int round = 0; round < 5; ++round) {
        CAPTURE(std::string(dtype_name(dtype)));
        const Shape shape = round == 0 ? Shape{(1 << 22) + 3} : draw.shape(static_cast<int>(draw(1, 4)), 1, 11);
        CAPTURE(shape_str(shape));
        const Tensor av = testing::randn(shape, 1000 + round, dtype), bv = testing::randn(shape, 1100 + round, dtype);
        const double tol = tol_of(dtype, 1e-6);  // all accumulate in double: only the order differs
        for (Layout l : layouts_for(static_cast<int>(shape.size()))) {
          CAPTURE(std::string(layout_name(l)));
          const Pair a = laid(av, l), b = laid(bv, Layout::contiguous);
          const double abs_sum = ops::norm(a.cpu, 1.0);
          CHECK(std::abs(ops::sum_all(a.gpu) - ops::sum_all(a.cpu)) <= tol * abs_sum);
          CHECK(std::abs(ops::dot(a.gpu, b.gpu) - ops::dot(a.cpu, b.cpu)) <= tol * ops::norm(a.cpu, 2.0) * ops::norm(b.cpu, 2.0));
          for (double p : {1.0, 2.0, 3.0, kInf}) {
            CAPTURE(p);
            const double want = ops::norm(a.cpu, p);
            CHECK(std::abs(ops::norm(a.gpu, p) - want) <= tol * want);
          }
        }
      }
    // A NaN makes every one of them NaN, as on the CPU.
    const Pair x = pair_of(specials(DType::f64));
    CHECK(std::isnan(ops::sum_all(x.gpu)));
    CHECK(std::isnan(ops::norm(x.gpu, 2.0)) == std::isnan(ops::norm(x.cpu, 2.0)));
    CHECK(std::isnan(ops::norm(x.gpu, kInf)) == std::isnan(ops::norm(x.cpu, kInf)));
  }

  TEST_CASE("random fills and dropout masks: the CPU's values from the same Generator state") {
    TETHER_REQUIRE_GPU("uniform_/normal_/bernoulli_/dropout_mask");
    for (DType dtype : kFloat)
      for (int64_t n : {1, 3, 4, 5, 1001, (1 << 20) + 2}) {
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(n);
        // Uniform, Bernoulli and dropout draws are arithmetic on the same words: identical
        // (the device must not contract lo + (hi - lo) u into an FMA). Box-Muller's log, cos
        // and sin may differ from glibc's by an ulp or two: normal_ within 1e-13 (f64).
        const double normal_tol = dtype == DType::f64 ? 1e-13 : 1e-6;
        for (uint64_t skip : {0, 1, 6}) {  // start off a block boundary: host draws first
          CAPTURE(skip);
          Generator gc(42 + n), gg(42 + n);
          for (uint64_t i = 0; i < skip; ++i) gc.next_u32(), gg.next_u32();
          Pair t = pair_of(Tensor::zeros({n}, dtype));
          ops::uniform_(t.cpu, -2.0, 3.0, gc);
          ops::uniform_(t.gpu, -2.0, 3.0, gg);
          expect_match("uniform_", t, 0.0);
          ops::normal_(t.cpu, 0.5, 2.0, gc);
          ops::normal_(t.gpu, 0.5, 2.0, gg);
          expect_match("normal_", t, normal_tol);
          ops::bernoulli_(t.cpu, 0.3, gc);
          ops::bernoulli_(t.gpu, 0.3, gg);
          expect_match("bernoulli_", t, 0.0);
          const Tensor mc = ops::dropout_mask({n, 2}, 0.25, dtype, Device::cpu(), gc);
          const Tensor mg = ops::dropout_mask({n, 2}, 0.25, dtype, gpu(), gg);
          expect_match("dropout_mask", mg, mc, 0.0);
          CHECK(gc.offset() == gg.offset());  // both consumed the same stream
          gc.next_u32(), gg.next_u32();
          CHECK(gc.next_u32() == gg.next_u32());
        }
      }
    // Multi-dimensional contiguous tensors draw in row-major order; strided ones are refused.
    Generator gc(7), gg(7);
    Pair t = pair_of(Tensor::zeros({3, 5, 7}, DType::f64));
    ops::normal_(t.cpu, 0.0, 1.0, gc);
    ops::normal_(t.gpu, 0.0, 1.0, gg);
    expect_match("normal_ 3-D", t, 1e-13);
    CHECK(testing::error_of([&] { ops::uniform_(ops::transpose(t.gpu, 0, 2), 0.0, 1.0, gg); }) != "(no error)");
  }
}
