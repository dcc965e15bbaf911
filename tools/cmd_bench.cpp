// `tether bench`: training-step and inference throughput of a model (img/s, median of timed
// runs after warm-up) and the process's peak resident memory, for comparison with
// tools/bench_torch.py, which measures the same in PyTorch (tools/bench/run_model_bench.sh
// runs both side by side on the CPU, tools/gpu-check.sh on a GPU).
//
// With --device cuda[:N] the model and the batch live on the GPU; every run ends with a
// synchronisation before the timer stops, and the caching allocator's peak (reset after the
// warm-up) gives the peak GPU memory of the timed steps (PyTorch: max_memory_allocated).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/cuda/backend.h"
#include "layers/dropout.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/train/device.h"

namespace tether::cli {

namespace {

struct BenchOptions {
  std::string model = "resnet50";
  int64_t batch = 16, size = 224, num_classes = 1000;
  int threads = 0, warmup = 2, iters = 10;
  std::string mode = "both";  // train | infer | both
  std::string device = "cpu";  // cpu | cuda[:N]
  std::string tf32 = "conv";   // conv | all | none (GPU float32 math, see core/device.h)
  bool json = false;
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// On a GPU each run waits for its kernels, and the allocator's peak restarts after warm-up.
template <typename Step>
double median_seconds(int warmup, int iters, Device device, Step step) {
  auto run = [&] {
    step();
    if (device.is_cuda()) cuda::synchronize(device.index);
  };
  for (int i = 0; i < warmup; ++i) run();
  if (device.is_cuda()) cuda::reset_peak(device.index);
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Peak bytes in tensors on the GPU since the last reset_peak, in MiB.
double peak_gpu_mib(Device device) {
  return static_cast<double>(cuda::memory_stats(device.index).peak_allocated) / (1 << 20);
}

void run_bench(const BenchOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const Device device = train::setup_device(o.device, o.tf32);
  manual_seed(0);
  models::ModelPtr model = models::create_model(o.model, {.num_classes = o.num_classes});
  model->to(device);
  Generator gen(1);
  Tensor x = Tensor::empty({o.batch, 3, o.size, o.size});
  ops::normal_(x, 0.0, 1.0, gen);
  Tensor target = Tensor::empty({o.batch}, DType::i64);
  {
    int64_t* t = target.data<int64_t>();
    for (int64_t i = 0; i < o.batch; ++i) t[i] = static_cast<int64_t>(gen.next_below(o.num_classes));
  }
  x = x.to(device);
  target = target.to(device);
  nlohmann::json result = {{"model", o.model},     {"batch", o.batch},    {"size", o.size},
                           {"threads", omp_get_max_threads()}, {"iters", o.iters}, {"framework", "tether"},
                           {"device", device.str()}};
  if (device.is_cuda()) {
    result["tf32"] = o.tf32;
    result["gpu"] = cuda::describe_device(device.index);
  }
  if (o.mode == "infer" || o.mode == "both") {
    model->eval();
    const double s = median_seconds(o.warmup, o.iters, device, [&] {
      NoGradGuard no_grad;
      (*model)(x);
    });
    result["infer_img_s"] = static_cast<double>(o.batch) / s;
    result["infer_peak_rss_mb"] = peak_rss_mb();
    if (device.is_cuda()) result["infer_peak_gpu_mib"] = peak_gpu_mib(device);
  }
  if (o.mode == "train" || o.mode == "both") {
    model->train();
    const std::vector<Tensor> params = model->parameters();
    const double s = median_seconds(o.warmup, o.iters, device, [&] {
      model->zero_grad();
      Tensor loss = cross_entropy((*model)(x), target);
      loss.backward();
      NoGradGuard no_grad;  // plain SGD step, as torch.optim.SGD(lr) without momentum
      for (const Tensor& p : params)
        if (p.grad().defined()) ops::axpy_(p, -1e-4, p.grad());
    });
    result["train_img_s"] = static_cast<double>(o.batch) / s;
    if (device.is_cuda()) {
      result["train_peak_gpu_mib"] = peak_gpu_mib(device);
      // Held from the driver (tensors + the allocator's cache): PyTorch's max_memory_reserved.
      result["train_peak_reserved_mib"] =
          static_cast<double>(cuda::memory_stats(device.index).peak_reserved) / (1 << 20);
    }
  }
  result["peak_rss_mb"] = peak_rss_mb();
  if (o.json) {
    std::cout << result.dump() << "\n";
    return;
  }
  std::cout << o.model << " batch " << o.batch << " at " << o.size << "x" << o.size << " on " << device.str();
  if (device.is_cuda()) std::cout << " (" << result["gpu"].get<std::string>() << ", --tf32 " << o.tf32 << ")";
  else std::cout << ", " << result["threads"].get<int>() << " threads";
  std::cout << ", median of " << o.iters << " after " << o.warmup << " warm-up\n";
  if (result.contains("train_img_s")) std::cout << "  train step: " << result["train_img_s"].get<double>() << " img/s\n";
  if (result.contains("infer_img_s")) std::cout << "  inference:  " << result["infer_img_s"].get<double>() << " img/s\n";
  if (result.contains("train_peak_gpu_mib"))
    std::cout << "  peak GPU memory (train step): " << result["train_peak_gpu_mib"].get<double>() << " MiB\n";
  if (result.contains("infer_peak_gpu_mib"))
    std::cout << "  peak GPU memory (inference):  " << result["infer_peak_gpu_mib"].get<double>() << " MiB\n";
  std::cout << "  peak RSS:   " << result["peak_rss_mb"].get<double>() << " MB\n";
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Training-step and inference throughput and peak memory of a model");
  cmd->add_option("--model", o->model, "model name (tether models)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--size", o->size, "input height and width")->check(CLI::Range(16, 4096))->capture_default_str();
  cmd->add_option("--num-classes", o->num_classes, "classifier outputs")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: OpenMP's default)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup", o->warmup, "untimed runs first")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--iters", o->iters, "timed runs (the median is reported)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--mode", o->mode, "train, infer or both")->check(CLI::IsMember({"train", "infer", "both"}))->capture_default_str();
  cmd->add_flag("--json", o->json, "one JSON line instead of text");
  cmd->add_option("--device", o->device, "cpu or cuda[:N]")
      ->check([](const std::string& v) {
        try {
          Device::parse(v);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      })
      ->capture_default_str();
  cmd->add_option("--tf32", o->tf32, "GPU float32 math: conv (TF32 convolutions, PyTorch's default), all or none")
      ->check(CLI::IsMember({"conv", "all", "none"}))
      ->capture_default_str();
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace tether::cli
