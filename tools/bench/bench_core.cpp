// bench_core: how fast the CPU core of tether is on this machine.
//   1. the measured f32 peak (a register-blocked FMA loop on the widest vectors the build
//      has), on one thread and on all threads (per-thread CPU time, see measure_peak);
//   2. Eigen GEMM (through ops::gemm) GFLOP/s on square and ResNet-like sizes, as % of that peak;
//   3. conv2d forward, backward-data and backward-weight times on ResNet-50 layer shapes.
// Usage: bench_core [--threads N] [--batch N] [--quick] [--cpu-time] [--min] [--no-gemm] [--no-conv] [--no-peak] [--shape NAME]
//   --cpu-time: time by process CPU time / threads, in samples of >= 0.1 s (steadier on a
//               machine shared with other jobs: time spent descheduled is not counted)
//   --min: report the fastest of the repeated runs instead of the median
// Lines starting with "CONV " (name, batch, threads, fwd/bwd-data/bwd-weight/total ms) and
// "GEMM "/"PEAK " are meant for tools/bench/run_core_bench.sh.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <ctime>
#include <vector>

#include "core/ops.h"
#include "core/random.h"

using namespace tether;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// With --cpu-time, benchmarks are timed by the process's CPU time divided by the thread
// count: on a machine shared with other jobs this does not count the time spent descheduled.
bool g_cpu_time = false;
int g_threads = 1;
double bench_clock_s() {
  if (!g_cpu_time) return now_s();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec)) / g_threads;
}

// --min: report the fastest run instead of the median (the estimate least disturbed by
// other jobs on a shared machine).
bool g_use_min = false;

// Median (or, with --min, minimum) time in seconds of fn() after one warm-up call, over at
// least `min_reps` samples and until `budget_s` seconds have been spent. With --cpu-time a
// sample runs fn() enough times to last ~0.1 s (the kernel accounts CPU time in scheduler
// ticks) and counts the mean.
double time_median(const std::function<void()>& fn, int min_reps, double budget_s) {
  double t0 = now_s();
  fn();
  int inner = 1;
  if (g_cpu_time) inner = static_cast<int>(std::clamp(0.1 / std::max(now_s() - t0, 1e-6), 1.0, 1000.0));
  std::vector<double> ts;
  const double start = now_s();
  while (static_cast<int>(ts.size()) < min_reps || (now_s() - start < budget_s && ts.size() < 200)) {
    t0 = bench_clock_s();
    for (int i = 0; i < inner; ++i) fn();
    ts.push_back((bench_clock_s() - t0) / inner);
  }
  std::sort(ts.begin(), ts.end());
  return g_use_min ? ts.front() : ts[ts.size() / 2];
}

// ---- 1. peak -----------------------------------------------------------------------------
// kAcc independent accumulators hide the FMA latency; acc = acc * a + b converges (no
// overflow, no denormals), so the loop runs at full speed for any length.
constexpr int kAcc = 12;

#if defined(__AVX512F__)
constexpr int kLanes = 16;
const char* kIsa = "AVX-512";
double fma_loop(int64_t iters) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(float(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  alignas(64) float out[16];
  float sum = 0;
  for (int i = 0; i < kAcc; ++i) {
    _mm512_store_ps(out, acc[i]);
    for (float v : out) sum += v;
  }
  return sum;
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
const char* kIsa = "AVX2+FMA";
double fma_loop(int64_t iters) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  alignas(32) float out[8];
  float sum = 0;
  for (int i = 0; i < kAcc; ++i) {
    _mm256_store_ps(out, acc[i]);
    for (float v : out) sum += v;
  }
  return sum;
}
#else
constexpr int kLanes = 1;
const char* kIsa = "scalar";
double fma_loop(int64_t iters) {
  float acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = float(i);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = acc[i] * 0.999999f + 1e-6f;
  float sum = 0;
  for (float v : acc) sum += v;
  return sum;
}
#endif

volatile double g_sink = 0;

double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// GFLOP/s of the FMA loop on `threads` threads running together. Each thread's rate is its
// flops per second of its own CPU time, and the peak is their sum: time a thread spends
// descheduled while other jobs run does not count (it would with wall-clock time), while
// threads sharing a core's FMA units (SMT siblings) would still show it. Best of 3 runs of
// ~`seconds` each (CPU time is accounted in scheduler ticks, so runs must not be short).
double measure_peak(int threads, double seconds) {
  const double flops_per_iter = 2.0 * kAcc * kLanes;
  int64_t iters = 1 << 20;
  for (;;) {  // calibrate on one thread
    const double t0 = thread_cpu_s();
    g_sink = g_sink + fma_loop(iters);
    const double dt = thread_cpu_s() - t0;
    if (dt > 0.05) {
      iters = static_cast<int64_t>(iters * seconds / dt);
      break;
    }
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
#pragma omp barrier
      const double t0 = thread_cpu_s();
      const double r = fma_loop(iters);
      total += iters * flops_per_iter / (thread_cpu_s() - t0) * 1e-9;
#pragma omp critical
      g_sink = g_sink + r;
    }
    best = std::max(best, total);
  }
  return best;
}

// ---- 2. GEMM ------------------------------------------------------------------------------
Tensor randn(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::empty(shape, DType::f32);
  ops::normal_(t, 0.0, 1.0, gen);
  return t;
}

struct GemmCase {
  const char* name;
  int64_t M, N, K;
  bool ta, tb;
};

// ---- 3. conv ------------------------------------------------------------------------------
struct ConvCase {
  const char* name;
  int64_t C, O, k, stride, pad, H, groups;
};

const std::vector<ConvCase> kConvCases = {
    {"conv1_7x7s2_3_64_224", 3, 64, 7, 2, 3, 224, 1},
    {"1x1_256_64_56", 256, 64, 1, 1, 0, 56, 1},
    {"3x3_64_64_56", 64, 64, 3, 1, 1, 56, 1},
    {"3x3s2_128_128_56", 128, 128, 3, 2, 1, 56, 1},
    {"1x1_1024_256_14", 1024, 256, 1, 1, 0, 14, 1},
    {"3x3_512_512_7", 512, 512, 3, 1, 1, 7, 1},
    {"1x1_64_256_56", 64, 256, 1, 1, 0, 56, 1},
    {"1x1s2_512_1024_28", 512, 1024, 1, 2, 0, 28, 1},
    {"3x3_256_256_14", 256, 256, 3, 1, 1, 14, 1},
    {"3x3g32_256_256_28", 256, 256, 3, 1, 1, 28, 32},
    {"dw3x3_128_56", 128, 128, 3, 1, 1, 56, 128},
};

void usage() {
  std::printf("usage: bench_core [--threads N] [--batch N] [--quick] [--cpu-time] [--min] [--no-gemm] [--no-conv] [--no-peak] [--shape NAME]\n");
}

}  // namespace

int main(int argc, char** argv) {
  int threads = omp_get_max_threads();
  int64_t batch = 8;
  bool quick = false, do_gemm = true, do_conv = true, do_peak = true;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return "";  // rejected below as a bad value
      return argv[++i];
    };
    if (a == "--threads") threads = std::atoi(value().c_str());
    else if (a == "--batch") batch = std::atoll(value().c_str());
    else if (a == "--quick") quick = true;
    else if (a == "--cpu-time") g_cpu_time = true;
    else if (a == "--min") g_use_min = true;
    else if (a == "--no-gemm") do_gemm = false;
    else if (a == "--no-conv") do_conv = false;
    else if (a == "--no-peak") do_peak = false;
    else if (a == "--shape") only = value();
    else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (threads < 1 || batch < 1) {
    std::fprintf(stderr, "--threads and --batch must be >= 1\n");
    return 2;
  }
  omp_set_num_threads(threads);
  g_threads = threads;
  const double budget = quick ? 0.3 : 1.0;
  const int min_reps = quick ? 3 : 5;

  try {
    // 1. Peak.
    double peakn = 0;
    if (do_peak || do_gemm) {
      const double peak1 = measure_peak(1, quick ? 0.15 : 0.3);
      peakn = threads > 1 ? measure_peak(threads, quick ? 0.15 : 0.3) : peak1;
      std::printf("== peak f32 (%s FMA, %d accumulators)\n", kIsa, kAcc);
      std::printf("  1 thread:  %8.1f GFLOP/s\n  %d threads: %8.1f GFLOP/s\n", peak1, threads, peakn);
      std::printf("PEAK %d %.1f %.1f\n", threads, peak1, peakn);
    }

    // 2. GEMM.
    if (do_gemm) {
      std::vector<GemmCase> cases = {{"square", 256, 256, 256, false, false},   {"square", 512, 512, 512, false, false},
                                     {"square", 1024, 1024, 1024, false, false}, {"square", 1536, 1536, 1536, false, false},
                                     {"square", 2048, 2048, 2048, false, false}, {"square_tn", 1024, 1024, 1024, true, false},
                                     {"square_nt", 1024, 1024, 1024, false, true},
                                     // conv GEMMs per image: [O, C k k] x [C k k, OH OW]
                                     {"3x3_64@56", 64, 3136, 576, false, false},   {"1x1_1024_256@14", 256, 196, 1024, false, false},
                                     {"3x3_512@7_x8", 512, 392, 4608, false, false},
                                     {"3x3_64@56_dW", 64, 576, 3136, false, true},
                                     // a Linear layer: [batch, 2048] x [1000, 2048]^T
                                     {"fc_256x2048x1000", 256, 1000, 2048, false, true}};
      if (quick) cases.erase(cases.begin() + 4);  // no 2048^3
      std::printf("\n== GEMM f32 (%d threads; %% of the %d-thread peak %.1f GFLOP/s)\n", threads, threads, peakn);
      std::printf("  %-20s %6s %6s %6s %10s %8s %7s\n", "case", "M", "N", "K", "ms", "GFLOP/s", "%peak");
      for (const GemmCase& c : cases) {
        Tensor a = randn(c.ta ? Shape{c.K, c.M} : Shape{c.M, c.K}, 1);
        Tensor b = randn(c.tb ? Shape{c.N, c.K} : Shape{c.K, c.N}, 2);
        Tensor out = Tensor::empty({c.M, c.N});
        const double t = time_median([&] { ops::gemm(c.ta, c.tb, 1.0, a, b, 0.0, out); }, min_reps, budget);
        const double gf = 2.0 * c.M * c.N * c.K / t * 1e-9;
        std::printf("  %-20s %6ld %6ld %6ld %10.3f %8.1f %6.1f%%\n", c.name, long(c.M), long(c.N), long(c.K), t * 1e3,
                    gf, 100 * gf / peakn);
        std::printf("GEMM %s_%ldx%ldx%ld %.1f %.1f\n", c.name, long(c.M), long(c.N), long(c.K), gf, 100 * gf / peakn);
      }
    }

    // 3. Convolutions.
    if (do_conv) {
      std::printf("\n== conv2d f32, batch %ld, %d threads (ms; GFLOP/s counts 2 flops per MAC)\n", long(batch), threads);
      std::printf("  %-22s %9s %9s %9s %9s %8s %7s\n", "shape", "fwd", "bwd_data", "bwd_w", "total", "GFLOP/s",
                  "%peak");
      for (const ConvCase& c : kConvCases) {
        if (!only.empty() && only != c.name) continue;
        ops::Conv2dParams p;
        p.stride = {c.stride, c.stride};
        p.padding = {c.pad, c.pad};
        p.groups = c.groups;
        Tensor x = randn({batch, c.C, c.H, c.H}, 3);
        Tensor w = randn({c.O, c.C / c.groups, c.k, c.k}, 4);
        const Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), p);
        Tensor gy = randn(ys, 5);
        Tensor gx = Tensor::empty(x.shape()), gw = Tensor::empty(w.shape());
        const double tf = time_median([&] { ops::conv2d_forward(x, w, Tensor(), p); }, min_reps, budget);
        const double td = time_median([&] { ops::conv2d_backward_data(gy, w, p, gx, false); }, min_reps, budget);
        const double tw = time_median([&] { ops::conv2d_backward_weight(gy, x, p, gw, false); }, min_reps, budget);
        const double tot = tf + td + tw;
        const double flops = 3 * 2.0 * double(shape_numel(ys)) * double(c.C / c.groups * c.k * c.k);
        const double gf = flops / tot * 1e-9;
        std::printf("  %-22s %9.3f %9.3f %9.3f %9.3f %8.1f %6.1f%%\n", c.name, tf * 1e3, td * 1e3, tw * 1e3, tot * 1e3, gf,
                    peakn > 0 ? 100 * gf / peakn : 0.0);
        std::printf("CONV %s %ld %d %.4f %.4f %.4f %.4f\n", c.name, long(batch), threads, tf * 1e3, td * 1e3, tw * 1e3,
                    tot * 1e3);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_core: %s\n", e.what());
    return 1;
  }
  return 0;
}
