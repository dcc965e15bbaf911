// `tether attention`: DELTA's channel attention of SPEC 5 for `--reg delta --attention FILE`.
// The source model (--weights) gets a fresh head trained on its frozen backbone over the
// target training set (the same data flags as `tether train`, so --classes, --per-class and
// --val-split pick the same images), then each tap channel's importance is measured on the
// first --att-batches batches and turned into attention (regularizers/attention.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>

#include <omp.h>

#include "core/random.h"
#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "regularizers/attention.h"
#include "regularizers/source_network.h"
#include "tools/commands.h"
#include "tools/train/trainer.h"

namespace tether::cli {
namespace {

struct AttentionOptions {
  train::TrainOptions t;
  int64_t epochs = 10, batches = 4;
  double temperature = 5;
};

void run_attention(const AttentionOptions& a) {
  const train::TrainOptions& o = a.t;
  TETHER_CHECK(a.temperature > 0 && std::isfinite(a.temperature), "--att-temperature must be > 0 and finite, got ",
               a.temperature);
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const auto start = std::chrono::steady_clock::now();

  const train::TrainData data = train::load_train_data(o);
  const int64_t k = o.num_classes > 0 ? o.num_classes : data.train->num_classes();
  manual_seed(o.seed);
  auto model = models::create_model(o.model, {k});
  models::load_weights(*model, o.weights);
  model->reset_head(k);  // step 1: a fresh head (PyTorch's default init, seeded)
  const std::vector<std::string> taps = o.taps.empty() ? model->default_taps() : o.taps;
  reg::check_tap_names(*model, taps);

  // Step 1: every training image once through the frozen backbone (no augmentation), then the
  // head. The pass is in a seeded shuffled order, so that step 2's "first --att-batches batches"
  // are a sample of every class rather than the first class of the class-major dataset order.
  data::LoaderOptions lo = train::loader_options(o, false);
  lo.shuffle = true;
  lo.drop_last = false;
  data::Loader loader(data.train, data::make_eval_pipeline(train::transform_options(o)), lo);
  loader.start_epoch(0);
  std::vector<Tensor> reps, labels;
  std::vector<std::pair<Tensor, Tensor>> measured;  // step 2's batches
  data::Batch batch;
  while (loader.next(batch)) {
    reps.push_back(reg::representation(*model, batch.images));
    labels.push_back(batch.labels);
    if (static_cast<int64_t>(measured.size()) < a.batches) measured.emplace_back(batch.images, batch.labels);
  }
  TETHER_CHECK(!reps.empty(), "attention: the training set of ", o.data, " is empty");
  reg::HeadTrainingOptions head;
  head.epochs = a.epochs;
  head.batch_size = o.batch_size;
  head.seed = o.seed;
  const double head_loss = reg::train_head(*model, ops::cat(reps, 0), ops::cat(labels, 0), head);
  std::cout << "head trained on the frozen " << o.model << " backbone: " << a.epochs << " epochs over "
            << data.train->size() << " images, last epoch's mean CE " << std::fixed << std::setprecision(4) << head_loss
            << "\n";

  // Steps 2 and 3.
  const auto increase = reg::channel_loss_increase(*model, taps, measured);
  std::map<std::string, std::vector<double>> attention;
  for (const auto& [tap, delta] : increase) {
    attention[tap] = reg::attention_from_increase(delta, a.temperature);
    const auto& at = attention[tap];
    std::cout << "  " << std::left << std::setw(16) << tap << std::right << std::setw(6) << at.size()
              << " channels  attention min " << std::setprecision(3) << *std::min_element(at.begin(), at.end())
              << " max " << *std::max_element(at.begin(), at.end()) << "  (loss increase max "
              << std::setprecision(5) << *std::max_element(delta.begin(), delta.end()) << ")\n";
  }
  // Step 4.
  std::string tap_list;
  for (const auto& t : taps) tap_list += (tap_list.empty() ? "" : ",") + t;
  reg::save_attention(o.attention, attention,
                      {{"model", o.model}, {"taps", tap_list}, {"att-epochs", std::to_string(a.epochs)},
                       {"att-batches", std::to_string(a.batches)}, {"att-temperature", std::to_string(a.temperature)}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << o.attention << " (" << std::setprecision(1) << seconds << " s)\n";
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
