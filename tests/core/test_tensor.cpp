// Tensor basics: factories, metadata, views and copies, errors.
#include "tests/test_util.h"

using namespace tether;
using namespace tether::testing;

TEST_SUITE("core") {
  TEST_CASE("factories and metadata") {
    Tensor t = Tensor::zeros({2, 3, 4});
    CHECK(t.dim() == 3);
    CHECK(t.numel() == 24);
    CHECK(t.strides() == Shape{12, 4, 1});
    CHECK(t.is_contiguous());
    CHECK(t.size(-1) == 4);
    CHECK(t.str() == "f32[2, 3, 4] cpu");
    CHECK(Tensor::full({2}, 3.5).to_vector<float>() == std::vector<float>{3.5f, 3.5f});
    CHECK(Tensor::scalar(2.0, DType::f64).item<double>() == 2.0);
    CHECK(Tensor::arange(4, DType::i64).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
    CHECK_THROWS_WITH_AS(t.size(3), doctest::Contains("dimension 3 out of range"), Error);
    CHECK_THROWS_WITH_AS(Tensor::zeros({2, -1}), doctest::Contains("negative dimension"), Error);
  }

  TEST_CASE("CHECK messages name condition, file:line and reason") {
    try {
      TETHER_CHECK(1 + 1 == 3, "arithmetic is ", "broken");
      FAIL("no throw");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("check failed: 1 + 1 == 3") != std::string::npos);
      CHECK(msg.find("tests/core/test_tensor.cpp:") != std::string::npos);
      CHECK(msg.find("arithmetic is broken") != std::string::npos);
    }
  }

  TEST_CASE("views share storage and respect strides") {
    Tensor t = Tensor::arange(24, DType::f64);
    Tensor v = ops::view(t, {2, 3, 4});
    CHECK(v.storage() == t.storage());
    Tensor p = ops::permute(v, {2, 0, 1});  // [4, 2, 3]
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(!p.is_contiguous());
    // p[i, j, k] = v[j, k, i] = 12 j + 4 k + i
    Tensor c = ops::contiguous(p);
    std::vector<double> vals = c.to_vector<double>();
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 3; ++k) CHECK(vals[i * 6 + j * 3 + k] == 12 * j + 4 * k + i);
    Tensor n = ops::narrow(v, 1, 1, 2);  // rows 1..2 of each matrix
    CHECK(n.shape() == Shape{2, 2, 4});
    CHECK(ops::contiguous(n).to_vector<double>()[0] == 4.0);
    Tensor s = ops::select(v, 0, 1);
    CHECK(s.shape() == Shape{3, 4});
    CHECK(s.to_vector<double>()[0] == 12.0);
    CHECK(ops::transpose(ops::view(t, {4, 6}), 0, 1).shape() == Shape{6, 4});
    CHECK_THROWS_WITH_AS(ops::view(p, {24}), doctest::Contains("not compatible"), Error);
    CHECK(ops::reshape(p, {24}).to_vector<double>() == c.to_vector<double>());
    CHECK(ops::view(t, {-1, 6}).shape() == Shape{4, 6});
    CHECK(ops::unsqueeze(t, 0).shape() == Shape{1, 24});
    CHECK(ops::squeeze(ops::unsqueeze(t, 1), 1).shape() == Shape{24});
    Tensor e = ops::expand(ops::view(Tensor::arange(3, DType::f64), {3, 1}), {2, 3, 4});
    CHECK(e.strides() == Shape{0, 1, 0});
    CHECK(ops::contiguous(e).to_vector<double>()[5] == 1.0);
  }

  TEST_CASE("copy_, cast, clone, fill, cat") {
    Tensor a = Tensor::arange(6, DType::f64);
    Tensor b = ops::cast(a, DType::f32);
    CHECK(b.dtype() == DType::f32);
    CHECK(b.to_vector<float>()[5] == 5.0f);
    Tensor c = a.clone();
    c.fill_(1.0);
    CHECK(a.to_vector<double>()[0] == 0.0);  // clone is a copy
    Tensor m = ops::view(a, {2, 3});
    Tensor target = Tensor::zeros({3, 2}, DType::f64);
    target.copy_(ops::transpose(m, 0, 1));
    CHECK(target.to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
    Tensor cat = ops::cat({m, ops::view(Tensor::ones({3}, DType::f64), {1, 3})}, 0);
    CHECK(cat.shape() == Shape{3, 3});
    CHECK(cat.to_vector<double>()[8] == 1.0);
    CHECK_THROWS_AS(ops::cat({m, Tensor::ones({2, 2}, DType::f64)}, 0), Error);
    CHECK(a.to(Device::cpu()).same(a));
  }

  TEST_CASE("devices: parsing and honest errors without a GPU") {
    CHECK(Device::parse("cpu") == Device::cpu());
    CHECK(Device::parse("cuda:1") == Device::cuda(1));
    CHECK_THROWS_WITH_AS(Device::parse("gpu"), doctest::Contains("bad device 'gpu'"), Error);
    if (!cuda_available()) {
      CHECK_THROWS_AS(Tensor::zeros({2}).to(Device::cuda()), Error);
    }
  }

  TEST_CASE("Philox: known-answer vector and counter-based determinism") {
    // Known-answer test from the Random123 distribution (philox4x32_10, key and counter zero).
    auto r = philox4x32(0, 0, 0);
    CHECK(r[0] == 0x6627e8d5u);
    CHECK(r[1] == 0xe169c58du);
    CHECK(r[2] == 0xbc57ac4cu);
    CHECK(r[3] == 0x9b00dbd8u);
    Generator g1(7), g2(7);
    Tensor a = Tensor::empty({1000}), b = Tensor::empty({600}), c = Tensor::empty({400});
    ops::uniform_(a, 0, 1, g1);
    ops::uniform_(b, 0, 1, g2);
    ops::uniform_(c, 0, 1, g2);
    CHECK(ops::cat({b, c}, 0).to_vector<float>() == a.to_vector<float>());  // split draws = one draw
    Tensor n = Tensor::empty({200000}, DType::f64);
    Generator g3(3);
    ops::normal_(n, 2.0, 3.0, g3);
    CHECK(ops::mean(n).item<double>() == doctest::Approx(2.0).epsilon(0.02));
    const double var = ops::mean(ops::unary(ops::Unary::square, ops::add_scalar(n, -2.0))).item<double>();
    CHECK(var == doctest::Approx(9.0).epsilon(0.02));
  }

  TEST_CASE("add_scalar on integer tensors (BatchNorm's batch counter is counted where it lives)") {
    const Tensor count = Tensor::from_vector<int64_t>({41, -3}, {2});
    const Tensor next = ops::add_scalar(count, 1.0);
    CHECK(next.dtype() == DType::i64);
    CHECK(next.to_vector<int64_t>() == std::vector<int64_t>{42, -2});
    CHECK(ops::add_scalar(Tensor::from_vector<uint8_t>({7}, {1}), 2.0).to_vector<uint8_t>() == std::vector<uint8_t>{9});
  }
}
