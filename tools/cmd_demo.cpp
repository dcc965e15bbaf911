// `tether demo`, the README's first command: transfer on real data in a few minutes.
//   1. Pretrain resnet18 at 32×32 on Fashion-MNIST classes 0–4 (the source task), from scratch.
//      Cached under --cache-dir, keyed by every setting that shapes it, and reused.
//   2. Fine-tune it on classes 5–9 (the target task) with 20 training images per class, once per
//      method and seed, each evaluated on the 5,000 test images of classes 5–9.
//   3. Print mean ± std top-1 accuracy and mean ‖w − w0‖ over S per method.
// The Fisher-weighted methods first compute the source model's diagonal Fisher (SPEC 4, sampled,
// 500 source images), scaled to max 1 over S, and cache it next to the source model. (Its mean is
// 5e-5 of its max here: scaled to mean 1, α·F of the stiffest weights makes SGD diverge at the
// demo's lr. So l2sp-fisher's α = 100 pulls the stiffest weight that hard and the average one
// with ~0.005, and glsp-fisher's α is glsp's over √(mean F).)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <cstdio>
#include <sstream>

#include "core/ops.h"
#include "core/safetensors.h"
#include "regularizers/param_sets.h"
#include "regularizers/penalty.h"
#include "tools/commands.h"
#include "tools/train/attention_run.h"
#include "tools/train/device.h"
#include "tools/train/fisher_run.h"
#include "tools/train/trainer.h"

namespace tether::cli {
namespace {

struct DemoOptions {
  std::vector<std::string> methods{"none", "l2", "l2sp", "mars-pgm", "dtnh-l2sp", "ptr"};
  int64_t seeds = 3, per_class = 20, pretrain_epochs = 2, pretrain_per_class = 0, finetune_epochs = 20, threads = 0;
  int64_t input_size = 32;  // 28×28 images resized; 224 runs the demo at ImageNet resolution (a GPU's job)
  std::string cache_dir, out, device = "cpu", tf32 = "conv";
};

// Each method: how it sets the options of a fine-tuning run. L2-SP's coefficients are the
// paper's defaults for small target sets (α = 0.1, β = 0.01); the others were set once so that
// their pull on Δ is of the same order (per-weight gradients ~1e-4 at the end of a free run), and
// the radii from the per-layer distances of an unregularised run (diagnostics.csv): about half
// of them. None were tuned on the test set.
constexpr double kL2Radius = 0.3;    // l2-pgm: γ per tensor of S (‖ΔW‖_F; a free run: 0.16–1.7, median 0.5)
constexpr double kMarsRadius = 1.5;  // mars-pgm: γ per row of S (‖Δ_r‖₁; a free run: max 0.3–17, median 2.7)
using Method = std::function<void(train::TrainOptions&)>;
const std::map<std::string, Method>& demo_methods() {
  static const std::map<std::string, Method> methods{
      {"none", [](train::TrainOptions& o) { o.reg = "none"; }},
      {"l2", [](train::TrainOptions& o) { o.reg = "l2", o.alpha = 0.01, o.beta = 0.01; }},
      {"l2sp", [](train::TrainOptions& o) { o.reg = "l2sp", o.alpha = 0.1, o.beta = 0.01; }},
      {"l2sp-fisher", [](train::TrainOptions& o) { o.reg = "l2sp-fisher", o.alpha = 100, o.beta = 0.01; }},
      {"l1sp", [](train::TrainOptions& o) { o.reg = "l1sp", o.alpha = 1e-4, o.beta = 0.01; }},
      {"glsp", [](train::TrainOptions& o) { o.reg = "glsp", o.alpha = 1e-4, o.beta = 0.01; }},
      {"glsp-fisher", [](train::TrainOptions& o) { o.reg = "glsp-fisher", o.alpha = 0.01, o.beta = 0.01; }},
      {"mars-sp", [](train::TrainOptions& o) { o.reg = "mars-sp", o.alpha = 0.01, o.beta = 1e-4; }},
      {"l2-pgm", [](train::TrainOptions& o) { o.project = "l2-pgm", o.gamma = kL2Radius; }},
      {"mars-pgm", [](train::TrainOptions& o) { o.project = "mars-pgm", o.gamma = kMarsRadius; }},
      {"dtnh-l2sp", [](train::TrainOptions& o) { o.reg = "l2sp", o.alpha = 0.1, o.beta = 0.01, o.dtnh = true; }},
      {"ptr", [](train::TrainOptions& o) { o.ptr = true; }},  // SPEC 6's defaults: R 3, m 1, T 1.0
      {"fnp", [](train::TrainOptions& o) { o.reg = "fnp", o.alpha = 0.01, o.beta = 0.01; }},
      {"kd", [](train::TrainOptions& o) { o.reg = "kd", o.alpha = 0.01, o.beta = 0.01; }},
      {"delta", [](train::TrainOptions& o) { o.reg = "delta", o.alpha = 0.01, o.beta = 0.01; }},  // + its attention
      {"dtnh-kd", [](train::TrainOptions& o) { o.reg = "kd", o.alpha = 0.01, o.beta = 0.01, o.dtnh = true; }},
  };
  return methods;
}

train::TrainOptions common_options(const DemoOptions& d) {
  train::TrainOptions o;
  o.model = "resnet18";
  o.data = "fashion-mnist";
  o.input_size = d.input_size;
  o.device = d.device, o.tf32 = d.tf32;
  o.augment = "none";  // 28×28 → 32×32, normalised: a deterministic input pipeline
  o.mean = {0.2860f, 0.2860f, 0.2860f};  // Fashion-MNIST's pixel mean and std
  o.std = {0.3530f, 0.3530f, 0.3530f};
  o.threads = d.threads;
  o.workers = 1;
  o.progress = "none";
  o.eval_batch_size = 500;
  return o;
}

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/tether";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/tether";
  return "/tmp/tether-cache";
}

// Pretrains (or finds in the cache) the source model; returns its weights file.
std::string source_model(const DemoOptions& d) {
  train::TrainOptions o = common_options(d);
  o.classes = {0, 1, 2, 3, 4};
  o.epochs = d.pretrain_epochs;
  o.per_class = d.pretrain_per_class;  // 0: all 6,000 per class
  o.batch_size = std::min<int64_t>(128, d.pretrain_per_class > 0 ? 5 * d.pretrain_per_class : 128);
  o.optimizer = "sgd", o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 5e-4, o.schedule = "cosine";
  o.augment = "flip";
  o.eval_batch_size = 1000;
  o.seed = 0;
  // The cache key: a hash (64-bit FNV-1a, stable across builds) of the settings that differ from
  // `tether train`'s defaults (so a flag added later, at its default, keeps old caches valid).
  const nlohmann::json settings = train::to_json(o), defaults = train::to_json(train::TrainOptions{});
  nlohmann::json changed = nlohmann::json::object();
  for (const auto& [name, value] : settings.items())
    if (!defaults.contains(name) || defaults[name] != value) changed[name] = value;
  uint64_t key = 0xcbf29ce484222325ULL;
  for (unsigned char ch : changed.dump()) key = (key ^ ch) * 0x100000001b3ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(key));
  const std::string name = std::string("demo-source-") + hex;
  const std::string dir = (d.cache_dir.empty() ? default_cache_dir() : d.cache_dir) + "/" + name;
  const std::string weights = dir + "/source.safetensors";
  if (std::filesystem::exists(weights)) {
    std::cout << "source model: cached " << weights << "\n";
    return weights;
  }
  std::filesystem::create_directories(dir);
  o.out = dir + "/run";
  o.save_final = weights;
  o.progress = "plain";
  o.log_interval = 50;
  std::cout << "source model: pretraining resnet18 on Fashion-MNIST classes 0-4 (" << d.pretrain_epochs << " epochs, "
            << (d.pretrain_per_class > 0 ? 5 * d.pretrain_per_class : 30000) << " images; cached in " << dir << ")\n"
            << std::flush;
  const train::TrainSummary s = train::run_training(o);
  std::cout << "source model: " << train::format_eval(s.final_eval) << ", " << std::fixed << std::setprecision(0)
            << s.seconds << " s\n";
  return weights;
}

// The source model's diagonal Fisher for the Fisher-weighted methods (SPEC 4, sampled mode, 500
// source images), scaled to max 1 over S; computed once and cached beside the source model.
std::string source_fisher(const DemoOptions& d, const std::string& source) {
  const std::string path = std::filesystem::path(source).parent_path().string() + "/fisher-sampled-500-max1.safetensors";
  if (std::filesystem::exists(path)) return path;
  train::TrainOptions o = common_options(d);
  o.weights = source;
  o.classes = {0, 1, 2, 3, 4};
  std::cout << "source Fisher: 500 source images, sampled mode\n" << std::flush;
  train::FisherRun run = train::compute_fisher_on_data(o, 500, "sampled");
  double largest = 0;
  for (const auto& [name, p] : run.model->named_parameters())
    if (p.dim() >= 2 && !reg::is_head_parameter(name, run.model->head_name()))  // S under --reg-params weights
      for (double v : run.fisher.at(name).to_vector<double>()) largest = std::max(largest, v);
  TETHER_CHECK(largest > 0, "the source model's Fisher is zero: cannot weight the penalties by it");
  for (auto& [name, f] : run.fisher) ops::scale_(f, 1.0 / largest);
  safetensors::save(path + ".tmp", run.fisher, {{"mode", "sampled"}, {"samples", "500"}, {"model", o.model},
                                                {"normalised", "max 1 over S"}});
  std::filesystem::rename(path + ".tmp", path);
  return path;
}

// DELTA's attention (SPEC 5) for one fine-tuning run's training images (they depend on its seed),
// computed once per seed and cached beside the source model.
std::string attention_for(const train::TrainOptions& run, const std::string& source) {
  train::TrainOptions o = run;
  o.attention = std::filesystem::path(source).parent_path().string() + "/attention-pc" + std::to_string(run.per_class) +
                "-seed" + std::to_string(run.seed) + ".safetensors";
  if (std::filesystem::exists(o.attention)) return o.attention;
  const std::string target = o.attention;
  o.attention += ".tmp";
  std::ostringstream log;  // the per-tap summary is not the demo's business
  train::compute_attention(o, {}, log);
  std::filesystem::rename(o.attention, target);
  return target;
}

struct Stats {
  double mean = 0, std = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x / v.size();
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(s.std / (v.size() - 1)) : 0.0;  // sample std, as numpy's ddof=1
  return s;
}

void run_demo(const DemoOptions& d) {
  train::resolve_device(d.device);  // before any work: a missing GPU is reported at once
  for (const auto& m : d.methods)
    if (!demo_methods().count(m)) {
      std::string known;
      for (const auto& [name, fn] : demo_methods()) known += (known.empty() ? "" : ", ") + name;
      TETHER_FAIL("--methods: unknown method '", m, "' (known: ", known, ")");
    }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string source = source_model(d);

  struct Row { std::vector<double> top1, distance; double seconds = 0; int diverged = 0; };
  std::map<std::string, Row> rows;
  for (const auto& m : d.methods)
    for (int64_t seed = 0; seed < d.seeds; ++seed) {
      train::TrainOptions o = common_options(d);
      o.weights = source;
      o.classes = {5, 6, 7, 8, 9};
      o.per_class = d.per_class;
      o.epochs = d.finetune_epochs;
      o.batch_size = 20;
      o.optimizer = "sgd", o.lr = 0.01, o.momentum = 0.9;
      o.augment = "flip";
      o.bn = "eval";  // batches of 20: keep the source's BN statistics (affine parameters still train)
      o.seed = static_cast<uint64_t>(seed);
      o.eval_interval = o.epochs * (5 * d.per_class / o.batch_size);  // once, at the end
      if (!d.out.empty()) o.out = d.out + "/" + m + "-seed" + std::to_string(seed);
      demo_methods().at(m)(o);
      if (reg::needs_fisher(o.reg)) o.fisher = source_fisher(d, source);
      if (o.reg == "delta") o.attention = attention_for(o, source);
      Row& row = rows[m];
      train::TrainSummary s;
      try {
        s = train::run_training(o);
      } catch (const train::NonFiniteLoss& e) {  // one method diverging must not lose the others' results
        ++row.diverged;
        std::cout << "  " << m << " seed " << seed << ": diverged (" << e.what() << ")\n" << std::flush;
        continue;
      }
      row.top1.push_back(100 * s.final_eval.top1);
      row.distance.push_back(s.distance_from_w0);
      row.seconds += s.seconds;
      std::cout << std::fixed << std::setprecision(2) << "  " << m << " seed " << seed << ": top1 "
                << 100 * s.final_eval.top1 << "%  |w - w0| " << s.distance_from_w0 << "  (" << std::setprecision(1)
                << s.seconds << " s)\n"
                << std::flush;
    }

  std::cout << "\nFine-tuning on Fashion-MNIST classes 5-9, " << d.per_class << " images per class, " << d.seeds
            << " seeds; top-1 on the 5,000 test images of those classes\n\n"
            << "method      top-1 (%)          |w - w0| over S   time/run\n";
  for (const auto& m : d.methods) {
    const Row& r = rows[m];
    if (r.top1.empty()) {
      std::cout << std::left << std::setw(10) << m << "   diverged in every run\n";
      continue;
    }
    const Stats a = stats(r.top1), w = stats(r.distance);
    std::cout << std::left << std::setw(10) << m << std::right << std::fixed << std::setprecision(2) << std::setw(7)
              << a.mean << " +- " << std::setw(5) << a.std << "     " << std::setw(10) << std::setprecision(3) << w.mean
              << "        " << std::setprecision(1) << r.seconds / r.top1.size() << " s"
              << (r.diverged ? "   (" + std::to_string(r.diverged) + " run(s) diverged)" : "") << "\n";
  }
  std::cout << "\ntotal " << std::setprecision(0)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto d = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "Pretrain on Fashion-MNIST 0-4, fine-tune on 5-9 with several methods, compare");
  std::string known;
  for (const auto& [name, fn] : demo_methods()) known += (known.empty() ? "" : ", ") + name;
  cmd->add_option("--methods", d->methods, "Methods to compare, comma-separated, from: " + known)
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--seeds", d->seeds, "Seeds per method")->check(CLI::PositiveNumber);
  cmd->add_option("--per-class", d->per_class, "Target training images per class")->check(CLI::Range(1, 1000));
  cmd->add_option("--pretrain-epochs", d->pretrain_epochs, "Source-model epochs")->check(CLI::PositiveNumber);
  cmd->add_option("--pretrain-per-class", d->pretrain_per_class, "Source images per class (0: all 6,000)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--finetune-epochs", d->finetune_epochs, "Fine-tuning epochs")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", d->threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--input-size", d->input_size, "Input size the 28x28 images are resized to")
      ->capture_default_str()
      ->check(CLI::Range(8, 1024));
  cmd->add_option("--device", d->device, "cpu or cuda[:N]")->capture_default_str();
  cmd->add_option("--tf32", d->tf32, "CUDA float32 math: conv (PyTorch's default), all, none")
      ->capture_default_str()
      ->check(CLI::IsMember({"conv", "all", "none"}));
  cmd->add_option("--cache-dir", d->cache_dir, "Where the source model is cached (default ~/.cache/tether)");
  cmd->add_option("--out", d->out, "Keep every fine-tuning run's directory under this folder");
  cmd->callback([d] { run_demo(*d); });
}

}  // namespace tether::cli
