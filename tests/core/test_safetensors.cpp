// safetensors round trip and every malformed-file error (SPEC 9).
#include <cstdio>
#include <fstream>

#include "core/safetensors.h"
#include "tests/test_util.h"

using namespace tether;

namespace {
std::string header_file(const std::string& json, const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return bytes + json + data;
}
}  // namespace

TEST_SUITE("core") {
  TEST_CASE("safetensors: round trip of every dtype, metadata, atomic write") {
    const std::string path = "/tmp/tether-test-roundtrip.safetensors";
    std::map<std::string, Tensor> in = {
        {"w", testing::randn({3, 4}, 1, DType::f32)},
        {"d", testing::randn({2}, 2, DType::f64)},
        {"n", Tensor::from_vector<int64_t>({7}, {})},
        {"u", Tensor::from_vector<uint8_t>({1, 2, 3}, {3})},
        {"t", ops::transpose(testing::randn({2, 3}, 3, DType::f32), 0, 1)},  // non-contiguous
    };
    safetensors::save(path, in, {{"mode", "exact"}});
    safetensors::File f = safetensors::load(path);
    CHECK(f.metadata.at("mode") == "exact");
    CHECK(f.tensors.size() == in.size());
    for (const auto& [name, t] : in) {
      CAPTURE(name);
      CHECK(f.tensors.at(name).dtype() == t.dtype());
      CHECK(f.tensors.at(name).shape() == t.shape());
      CHECK(f.tensors.at(name).to_vector<double>() == t.to_vector<double>());
    }
    std::ifstream tmp(path + ".tmp");
    CHECK(!tmp.good());  // the temporary was renamed away
    std::remove(path.c_str());
  }

  TEST_CASE("safetensors: F16, BF16 and I32 are converted") {
    // F16 1.0 = 0x3c00, -2.0 = 0xc000; BF16 1.5 = 0x3fc0; I32 -3.
    std::string data = std::string("\x00\x3c\x00\xc0", 4) + std::string("\xc0\x3f", 2) + std::string("\xfd\xff\xff\xff", 4);
    std::string json = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},)"
                       R"("i":{"dtype":"I32","shape":[1],"data_offsets":[6,10]}})";
    safetensors::File f = safetensors::parse(header_file(json, data), "mem");
    CHECK(f.tensors.at("h").to_vector<float>() == std::vector<float>{1.0f, -2.0f});
    CHECK(f.tensors.at("b").item<float>() == 1.5f);
    CHECK(f.tensors.at("i").item<int64_t>() == -3);
    CHECK(f.order == std::vector<std::string>{"h", "b", "i"});
  }

  TEST_CASE("safetensors: malformed files give one readable error naming the culprit") {
    const std::string ok_json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const std::string eight(8, '\0');
    auto err = [](const std::string& bytes) {
      try {
        safetensors::parse(bytes, "f.safetensors");
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(err(header_file(ok_json, eight)) == "no error");
    CHECK(err("abc").find("shorter than the 8-byte header") != std::string::npos);
    CHECK(err(header_file(ok_json, eight).substr(0, 20)).find("truncated") != std::string::npos);
    CHECK(err(header_file(ok_json, "1234")).find("outside the data section") != std::string::npos);
    CHECK(err(header_file("{not json", "")).find("not valid JSON") != std::string::npos);
    CHECK(err(header_file(R"({"w":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}})", "12")).find("unsupported dtype F8") != std::string::npos);
    CHECK(err(header_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)).find("'w'") != std::string::npos);
    CHECK(err(header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight))
              .find("overlaps") != std::string::npos);
    CHECK(err(header_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)).find("hole") != std::string::npos);
    CHECK(err(header_file(ok_json, eight + "xx")).find("trailing") != std::string::npos);
    std::string huge(8, '\xff');
    CHECK(err(huge + "{}").find("exceeds") != std::string::npos);
    CHECK_THROWS_WITH_AS(safetensors::load("/nonexistent/x.safetensors"), doctest::Contains("cannot open '/nonexistent/x.safetensors'"), Error);
  }
}
