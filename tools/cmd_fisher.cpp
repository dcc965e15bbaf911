// `tether fisher`: the diagonal Fisher information of SPEC 4 at the pretrained weights, on the
// first --samples images of the data in a seeded shuffled order, written as one f32 tensor per
// parameter (the --fisher file of `--reg l2sp-fisher`), with a per-layer summary (printed and,
// with --csv, written as name,numel,min,median,max).
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>

#include <omp.h>

#include "autograd/ops.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "regularizers/fisher.h"
#include "tools/commands.h"
#include "tools/train/trainer.h"

namespace tether::cli {
namespace {

// The data/model subset of `tether train`'s options (same names, same meaning), plus the
// Fisher's own.
struct FisherOptions {
  train::TrainOptions t;
  int64_t samples = 0;
  std::string mode = "sampled", out, csv;
};

// --data (ImageFolder root's train/, a --train-list, or "fashion-mnist"'s training set), then --classes.
data::DatasetPtr fisher_data(const train::TrainOptions& o) {
  data::DatasetPtr ds = o.data == "fashion-mnist" ? data::fashion_mnist("train")
                        : !o.train_list.empty()   ? data::list_file(o.train_list, o.data, o.num_classes)
                                                  : data::image_folder_split(o.data, "train");
  if (!o.classes.empty()) {
    for (int64_t c : o.classes)
      TETHER_CHECK(c < ds->num_classes(), "--classes: class ", c, " does not exist (the data has ", ds->num_classes(),
                   " classes)");
    ds = data::class_subset(ds, o.classes);
  }
  return ds;
}

void run_fisher(const FisherOptions& f) {
  const train::TrainOptions& o = f.t;
  const reg::FisherMode mode = reg::parse_fisher_mode(f.mode);
  TETHER_CHECK(f.samples > 0, "--samples must be positive, got ", f.samples);
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));

  const data::DatasetPtr all = fisher_data(o);
  TETHER_CHECK(f.samples <= all->size(), "--samples ", f.samples, " is larger than the data (", all->size(),
               " images in ", o.data, ")");
  // The first N of a seeded permutation (Fisher–Yates), kept in that order.
  std::vector<int64_t> order(static_cast<size_t>(all->size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  Generator shuffle(o.seed ^ 0x5348554646ULL);  // a stream apart from the class draws of `sampled`
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.next_below(i)]);
  order.resize(static_cast<size_t>(f.samples));
  const data::DatasetPtr ds = data::subset(all, order);

  const int64_t k = o.num_classes > 0 ? o.num_classes : all->num_classes();
  auto model = models::create_model(o.model, {k});
  const auto report = models::load_weights(*model, o.weights);
  TETHER_CHECK(report.head_loaded, "--weights '", o.weights, "' has no ", k, "-class head (", model->head_name(),
               "); give --num-classes to match the file");

  data::LoaderOptions lo = train::loader_options(o, false);
  lo.batch_size = 16;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.on_bad_image = data::OnBadImage::error;  // exactly the first N images, or an error naming the file
  data::Loader loader(ds, data::make_eval_pipeline(train::transform_options(o)), lo);

  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, Tensor> fisher;
  int64_t passes = 0;
  {
    reg::FisherAccumulator acc(*model, mode, o.seed);
    loader.start_epoch(0);
    data::Batch batch;
    while (loader.next(batch)) {
      const auto labels = batch.labels.to_vector<int64_t>();
      for (int64_t i = 0; i < batch.size(); ++i) acc.add(narrow(batch.images, 0, i, 1), labels[i]);
    }
    TETHER_CHECK(acc.samples() == f.samples, "fisher: the loader delivered ", acc.samples(), " of ", f.samples,
                 " images");
    fisher = acc.result();
    passes = acc.backward_passes();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  safetensors::save(f.out, fisher, {{"mode", f.mode}, {"samples", std::to_string(f.samples)}, {"model", o.model}});
  const auto rows = reg::summarize_fisher(model->named_parameters(), fisher);
  if (!f.csv.empty()) reg::write_fisher_csv(f.csv, rows);

  std::cout << "Fisher (" << f.mode << ") of " << o.model << " on " << f.samples << " images of " << o.data << ": "
            << passes << " backward passes, " << std::fixed << std::setprecision(2) << seconds << " s ("
            << std::setprecision(1) << 1000.0 * seconds / static_cast<double>(f.samples) << " ms/sample)\n";
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
