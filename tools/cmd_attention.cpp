// `tether attention`: DELTA's channel attention of SPEC 5 for `--reg delta --attention FILE`.
// The source model (--weights) gets a fresh head trained on its frozen backbone over the
// target training set (the same data flags as `tether train`, so --classes, --per-class and
// --val-split pick the same images), then each tap channel's importance is measured on the
// first --att-batches batches and turned into attention (regularizers/attention.h).
#include <iostream>
#include <memory>

#include <omp.h>

#include "models/registry.h"
#include "tools/commands.h"
#include "tools/train/attention_run.h"
#include "tools/train/options.h"

namespace tether::cli {
namespace {

struct AttentionOptions {
  train::TrainOptions t;
  int64_t epochs = 10, batches = 4;
  double temperature = 5;
};

void run_attention(const AttentionOptions& a) {
  if (a.t.threads > 0) omp_set_num_threads(static_cast<int>(a.t.threads));
  train::compute_attention(a.t, {a.epochs, a.batches, a.temperature}, std::cout);
}

}  // namespace

void add_attention_command(CLI::App& app) {
  auto a = std::make_shared<AttentionOptions>();
  train::TrainOptions& o = a->t;
  auto* cmd = app.add_subcommand("attention", "DELTA's channel attention for --reg delta (SPEC 5)");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--model", o.model, "Architecture")->required()->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--weights", o.weights, "Source weights (w0)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", o.data, "The training run's --data (its training set is used)")->required();
  cmd->add_option("--train-list", o.train_list, "'relative/path label' lines under --data instead of train/");
  cmd->add_option("--classes", o.classes, "Keep only these classes, relabelled in this order")->delimiter(',');
  cmd->add_option("--per-class", o.per_class, "Few-shot: K training images per class (as tether train)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--val-split", o.val_split, "As tether train: this seeded fraction is held out")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--num-classes", o.num_classes, "Classes of the head (0: from the data)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--taps", o.taps, "Modules whose channels get attention (default: the model's, SPEC 5)")
      ->delimiter(',');
  cmd->add_option("--attention", o.attention, "Output safetensors: one f32 tensor [C] per tap")->required();
  cmd->add_option("--att-epochs", a->epochs, "Epochs of head training on the frozen backbone")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--att-batches", a->batches, "Batches over which each channel's loss increase is measured")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--att-temperature", a->temperature, "Softmax temperature τ");
  cmd->add_option("--batch-size", o.batch_size, "Batch size (head training and measurement)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o.seed, "Seeds the head's init and the head training's order");
  train::add_eval_pipeline_flags(*cmd, o);
  cmd->callback([a] { run_attention(*a); });
}

}  // namespace tether::cli
