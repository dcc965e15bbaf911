// `tether fisher`: the diagonal Fisher information of SPEC 4 at the pretrained weights, on the
// first --samples images of the data in a seeded shuffled order, written as one f32 tensor per
// parameter (the --fisher file of `--reg l2sp-fisher`), with a per-layer summary (printed and,
// with --csv, written as name,numel,min,median,max).
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>

#include <omp.h>

#include "core/safetensors.h"
#include "models/registry.h"
#include "regularizers/fisher.h"
#include "tools/commands.h"
#include "tools/train/fisher_run.h"

namespace tether::cli {
namespace {

// The data/model subset of `tether train`'s options (same names, same meaning), plus the
// Fisher's own.
struct FisherOptions {
  train::TrainOptions t;
  int64_t samples = 0;
  std::string mode = "sampled", out, csv;
};

void run_fisher(const FisherOptions& f) {
  const train::TrainOptions& o = f.t;
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const train::FisherRun run = train::compute_fisher_on_data(o, f.samples, f.mode);
  const auto& fisher = run.fisher;
  safetensors::save(f.out, fisher, {{"mode", f.mode}, {"samples", std::to_string(f.samples)}, {"model", o.model}});
  const auto rows = reg::summarize_fisher(run.model->named_parameters(), fisher);
  if (!f.csv.empty()) reg::write_fisher_csv(f.csv, rows);

  std::cout << "Fisher (" << f.mode << ") of " << o.model << " on " << f.samples << " images of " << o.data << ": "
            << run.backward_passes << " backward passes, " << std::fixed << std::setprecision(2) << run.seconds << " s ("
            << std::setprecision(1) << 1000.0 * run.seconds / static_cast<double>(f.samples) << " ms/sample)\n";
  std::cout << std::left << std::setw(40) << "parameter" << std::right << std::setw(10) << "numel" << std::setw(13)
            << "min" << std::setw(13) << "median" << std::setw(13) << "max" << "\n"
            << std::scientific << std::setprecision(3);
  for (const auto& r : rows)
    std::cout << std::left << std::setw(40) << r.name << std::right << std::setw(10) << r.numel << std::setw(13)
              << r.min << std::setw(13) << r.median << std::setw(13) << r.max << "\n";
  std::cout << "wrote " << f.out << (f.csv.empty() ? "" : " and " + f.csv) << "\n";
}

}  // namespace

void add_fisher_command(CLI::App& app) {
  auto f = std::make_shared<FisherOptions>();
  train::TrainOptions& o = f->t;
  auto* cmd = app.add_subcommand("fisher", "Diagonal Fisher information at the pretrained weights (SPEC 4)");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--model", o.model, "Architecture")->required()->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--weights", o.weights, "Source weights, head included")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", o.data, "ImageFolder root (its train/), or 'fashion-mnist' (its training set)")
      ->required();
  cmd->add_option("--train-list", o.train_list, "'relative/path label' lines under --data instead of train/");
  cmd->add_option("--classes", o.classes, "Keep only these classes, relabelled in this order")->delimiter(',');
  cmd->add_option("--num-classes", o.num_classes, "Classes of the head (0: from the data)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--samples", f->samples, "N: the first N images of the data in a seeded shuffled order")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mode", f->mode, "exact (all classes, weighted by p), sampled (one class drawn from p) or "
                                     "empirical (the true label)")
      ->check(CLI::IsMember({"exact", "sampled", "empirical"}));
  cmd->add_option("--out", f->out, "Output safetensors: one f32 tensor per parameter")->required();
  cmd->add_option("--csv", f->csv, "Per-layer summary: name,numel,min,median,max");
  cmd->add_option("--seed", o.seed, "Seeds the choice of images and the classes drawn by 'sampled'");
  train::add_eval_pipeline_flags(*cmd, o);
  cmd->callback([f] { run_fisher(*f); });
}

}  // namespace tether::cli
