// Device memory and transfers: Tensor::to round trips (bit-identical, strided sources, dtype
// casts across devices), the caching allocator's statistics (a warmed-up loop calls cudaMalloc
// no more; peak tracking; empty_cache), the out-of-memory and device-mismatch errors, pinned
// host memory with asynchronous copies (a freed pinned block is reused only after its copies),
// and --tf32 parsing (which needs no GPU).
#include <cstring>

#include "core/cuda/backend.h"
#include "tests/cuda/cuda_test_util.h"

using namespace tether;
using namespace tether::cudatest;

namespace {

constexpr DType kAll[] = {DType::f32, DType::f64, DType::i64, DType::u8};

// Values of every dtype: scaled normals for floats, integers within the type's range.
Tensor values_of(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = testing::randn(shape, seed, DType::f64);
  if (dtype == DType::f32 || dtype == DType::f64) return ops::cast(ops::mul_scalar(t, 1e3), dtype);
  std::vector<double> v = t.to_vector<double>();
  for (double& e : v) e = dtype == DType::u8 ? std::min(std::floor(std::abs(e) * 80.0), 255.0) : std::floor(e * 1e9);
  return ops::cast(Tensor::from_vector(v, shape), dtype);
}

// The raw bytes of a tensor's elements in row-major order (on the host).
std::vector<unsigned char> bytes_of(const Tensor& t) {
  Tensor h = ops::contiguous(t.to(Device::cpu()));
  const unsigned char* p = static_cast<const unsigned char*>(h.raw_data());
  return std::vector<unsigned char>(p, p + h.numel() * element_size(h.dtype()));
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("Tensor::to: cpu -> cuda -> cpu is bit-identical, for every dtype and strided sources") {
    TETHER_REQUIRE_GPU("Tensor::to round trips");
    for (DType dtype : kAll)
      for (const Shape& shape : std::vector<Shape>{{}, {1}, {7}, {3, 5}, {2, 3, 4, 5}, {1 << 20}}) {
        CAPTURE(std::string(dtype_name(dtype)));
        CAPTURE(shape_str(shape));
        const Tensor x = values_of(shape, dtype, 1);
        const Tensor on_gpu = x.to(gpu());
        CHECK(on_gpu.device() == gpu());
        CHECK(on_gpu.device().str() == "cuda:0");
        CHECK(on_gpu.is_contiguous());
        CHECK(on_gpu.dtype() == dtype);
        const Tensor back = on_gpu.to(Device::cpu());
        CHECK(back.device().is_cpu());
        CHECK(bytes_of(back) == bytes_of(x));
        CHECK(on_gpu.to(gpu()).same(on_gpu));  // no move: the same handle
        if (shape.size() >= 2) {
          // Strided sources both ways: a transposed CPU view up, a transposed GPU view down.
          const Tensor xt = ops::transpose(x, 0, -1);
          CHECK(bytes_of(xt.to(gpu())) == bytes_of(xt));
          CHECK(bytes_of(ops::transpose(on_gpu, 0, -1).to(Device::cpu())) == bytes_of(xt));
          const Tensor sel = ops::select(x, -1, 1);
          CHECK(bytes_of(sel.to(gpu())) == bytes_of(sel));
          CHECK(bytes_of(ops::select(on_gpu, -1, 1).to(Device::cpu())) == bytes_of(sel));
        }
      }
  }

  TEST_CASE("copy_ across devices with dtype casts and strided destinations") {
    TETHER_REQUIRE_GPU("copy_ across devices");
    for (DType from : kAll)
      for (DType to : kAll) {
        CAPTURE(std::string(dtype_name(from)));
        CAPTURE(std::string(dtype_name(to)));
        // Integer values in [0, 200): exact in every dtype.
        std::vector<double> v(6 * 5);
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37) % 200);
        const Tensor src = ops::cast(Tensor::from_vector(v, {6, 5}), from);
        const Tensor want = ops::cast(src, to);
        for (bool up : {true, false}) {  // cpu -> cuda, cuda -> cpu
          CAPTURE(up);
          const Device dst_device = up ? gpu() : Device::cpu();
          const Tensor s = up ? src : src.to(gpu());
          Tensor dst = Tensor::zeros({6, 5}, to, dst_device);
          ops::copy_(dst, s);
          CHECK(bytes_of(dst) == bytes_of(want));
          // Strided destination (a transposed view of a [5, 6] buffer) and strided source.
          Tensor buf = Tensor::zeros({5, 6}, to, dst_device);
          ops::copy_(ops::transpose(buf, 0, 1), s);
          CHECK(bytes_of(ops::transpose(buf, 0, 1)) == bytes_of(want));
          Tensor dst2 = Tensor::zeros({5, 6}, to, dst_device);
          ops::copy_(dst2, ops::transpose(s, 0, 1));
          CHECK(bytes_of(dst2) == bytes_of(ops::transpose(want, 0, 1)));
        }
      }
  }

  TEST_CASE("caching allocator: a warmed-up loop calls cudaMalloc no more; peak and empty_cache") {
    TETHER_REQUIRE_GPU("caching allocator statistics");
    const std::vector<Shape> sizes = {{1000}, {4096}, {1 << 18}, {3 << 19}, {7, 1 << 20}};
    auto loop = [&] {
      std::vector<Tensor> live;
      for (const Shape& s : sizes) live.push_back(Tensor::empty(s, DType::f32, gpu()));
      Tensor y = ops::mul_scalar(live[2], 2.0);  // a kernel's temporary too
      (void)y;
    };
    for (int i = 0; i < 3; ++i) loop();
    const cuda::MemoryStats warm = cuda::memory_stats(0);
    for (int i = 0; i < 20; ++i) loop();
    const cuda::MemoryStats after = cuda::memory_stats(0);
    CHECK(after.cuda_mallocs == warm.cuda_mallocs);
    CHECK(after.allocated == warm.allocated);  // everything was given back
    CHECK(after.reserved >= after.allocated);

    // Peak: reset, hold 64 MiB, release; the peak remembers it until the next reset.
    cuda::reset_peak(0);
    const int64_t base = cuda::memory_stats(0).allocated;
    CHECK(cuda::memory_stats(0).peak_allocated == base);
    {
      Tensor big = Tensor::empty({16 << 20}, DType::f32, gpu());
      const cuda::MemoryStats held = cuda::memory_stats(0);
      CHECK(held.allocated >= base + (int64_t{64} << 20));
      CHECK(held.peak_allocated == held.allocated);
      CHECK(held.peak_reserved >= held.reserved);
    }
    const cuda::MemoryStats released = cuda::memory_stats(0);
    CHECK(released.allocated == base);
    CHECK(released.peak_allocated >= base + (int64_t{64} << 20));
    cuda::reset_peak(0);
    CHECK(cuda::memory_stats(0).peak_allocated == base);

    // empty_cache gives every cached block back: reserved drops to what tensors hold.
    cuda::empty_cache(0);
    const cuda::MemoryStats emptied = cuda::memory_stats(0);
    CHECK(emptied.reserved == emptied.allocated);
    // And the device still works afterwards (new blocks are cudaMalloc'ed again).
    const Pair x = randn2({1000}, 3, DType::f32);
    expect_match("after empty_cache", map(x, [](const Tensor& t) { return ops::mul_scalar(t, 3.0); }), 0.0);
    CHECK(cuda::memory_stats(0).cuda_mallocs > emptied.cuda_mallocs);
  }

  TEST_CASE("out of memory: the error names the size requested and the free memory") {
    TETHER_REQUIRE_GPU("out-of-memory error");
    const int64_t pib = int64_t{1} << 50;  // 1 PiB
    const std::string message = testing::error_of([&] { Tensor::empty({pib / 8}, DType::f64, gpu()); });
    INFO(message);
    CHECK(contains(message, "out of memory"));
    CHECK(contains(message, "cuda:0"));
    CHECK(contains(message, std::to_string(pib)));  // a multiple of the 2 MiB rounding: the exact size
    CHECK(contains(message, "free"));
    // The device is usable afterwards.
    const Pair x = randn2({257}, 4, DType::f64);
    expect_match("after out of memory", map(x, [](const Tensor& t) { return ops::add_scalar(t, 1.0); }), 0.0);
  }

  TEST_CASE("mixing devices in one op is an error naming both devices") {
    TETHER_REQUIRE_GPU("device-mismatch error");
    const Tensor a = Tensor::ones({3}, DType::f32), b = Tensor::ones({3}, DType::f32, gpu());
    for (const std::string& message :
         {testing::error_of([&] { ops::binary(ops::Binary::add, a, b); }),
          testing::error_of([&] { ops::binary(ops::Binary::mul, b, a); }), testing::error_of([&] { add(a, b); }),
          testing::error_of([&] { ops::matmul(ops::reshape(a, {1, 3}), ops::reshape(b, {3, 1})); }),
          testing::error_of([&] { ops::axpy_(b, 1.0, a); })}) {
      INFO(message);
      CHECK(contains(message, "cpu"));
      CHECK(contains(message, "cuda:0"));
    }
    const std::string conv = testing::error_of([&] {
      ops::conv2d_forward(Tensor::ones({1, 1, 3, 3}), Tensor::ones({1, 1, 1, 1}, DType::f32, gpu()), Tensor(), {});
    });
    INFO(conv);
    CHECK(contains(conv, "cpu"));
    CHECK(contains(conv, "cuda:0"));
  }

  TEST_CASE("pinned host memory: asynchronous copies land intact; a freed block is reused only after them") {
    TETHER_REQUIRE_GPU("pinned memory");
    const int64_t n = 1 << 22;
    const size_t nbytes = static_cast<size_t>(n) * sizeof(float);
    float* host = static_cast<float*>(cuda::alloc_pinned(nbytes));
    REQUIRE(host != nullptr);
    CHECK(cuda::is_pinned(host));
    CHECK(cuda::is_pinned(host + n - 1));
    float on_stack = 0;
    CHECK_FALSE(cuda::is_pinned(&on_stack));
    std::vector<float> want(n);
    for (int64_t i = 0; i < n; ++i) want[i] = host[i] = static_cast<float>(i % 1000) - 500.0f;
    // Host -> device from pinned memory is queued; the kernel after it on the same stream reads it.
    Tensor t = Tensor::empty({n}, DType::f32, gpu());
    cuda::copy(t.raw_data(), gpu(), host, Device::cpu(), nbytes);
    Tensor doubled = ops::mul_scalar(t, 2.0);
    // Freed while the copy may still be queued; the next pinned block of that size (likely the
    // same one) is handed out only after the copy has read it, so overwriting it is safe.
    cuda::free_pinned(host);
    float* back = static_cast<float*>(cuda::alloc_pinned(nbytes));
    std::fill(back, back + n, -1.0f);
    const std::vector<float> got = t.to_vector<float>(), got2 = doubled.to_vector<float>();
    CHECK(std::memcmp(got.data(), want.data(), nbytes) == 0);
    bool doubled_ok = true;
    for (int64_t i = 0; i < n; ++i) doubled_ok &= got2[i] == 2.0f * want[i];
    CHECK(doubled_ok);
    // Device -> pinned host is synchronous: the values are there on return.
    cuda::copy(back, Device::cpu(), doubled.raw_data(), gpu(), nbytes);
    CHECK(std::memcmp(back, got2.data(), nbytes) == 0);
    // Reusing one pinned buffer for successive batches (the loader's pattern).
    for (int round = 0; round < 3; ++round) {
      for (int64_t i = 0; i < n; ++i) back[i] = static_cast<float>(round * 7 + i % 13);
      Tensor batch = Tensor::empty({n}, DType::f32, gpu());
      cuda::copy(batch.raw_data(), gpu(), back, Device::cpu(), nbytes);
      const std::vector<float> landed = batch.to_vector<float>();
      CHECK(std::memcmp(landed.data(), back, nbytes) == 0);
    }
    cuda::free_pinned(back);
  }
}

TEST_SUITE("cuda") {
  // No GPU needed: the flag's parsing and the mode it sets.
  TEST_CASE("--tf32 modes: conv, all, none; anything else names --tf32") {
    const std::string saved = tf32_mode();
    set_tf32_mode("all");
    CHECK(tf32_mode() == "all");
    CHECK(cuda_math().tf32_conv);
    CHECK(cuda_math().tf32_matmul);
    set_tf32_mode("none");
    CHECK(tf32_mode() == "none");
    CHECK_FALSE(cuda_math().tf32_conv);
    CHECK_FALSE(cuda_math().tf32_matmul);
    set_tf32_mode("conv");
    CHECK(tf32_mode() == "conv");
    CHECK(cuda_math().tf32_conv);
    CHECK_FALSE(cuda_math().tf32_matmul);
    for (const std::string bad : {"", "tf32", "ALL", "matmul"}) {
      CAPTURE(bad);
      const std::string message = testing::error_of([&] { set_tf32_mode(bad); });
      CHECK(contains(message, "--tf32"));
      CHECK(contains(message, "'" + bad + "'"));
      CHECK(tf32_mode() == "conv");  // a bad value changes nothing
    }
    set_tf32_mode(saved);
  }
}
