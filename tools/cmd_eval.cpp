// `tether eval`: top-1/top-5/mean per-class accuracy, loss and predictive entropy of trained
// weights on a split (centre crop or ten crops), with an optional predictions CSV.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <omp.h>

#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tools/commands.h"
#include "tools/train/evaluate.h"
#include "tools/train/run_files.h"

namespace tether::cli {
namespace {

struct EvalOptions {
  std::string model, weights, data, split = "val", predictions, interpolation = "bilinear", augment = "rrc";
  std::vector<int64_t> classes;
  int64_t num_classes = 0, input_size = 224, resize_size = 0, batch_size = 64, workers = 2, threads = 0;
  std::vector<float> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
  bool ten_crop = false;
};

void run_eval(const EvalOptions& o) {
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  data::DatasetPtr ds = o.data == "fashion-mnist" ? data::fashion_mnist(o.split == "train" ? "train" : "test")
                                                  : data::image_folder_split(o.data, o.split);
  if (!o.classes.empty()) ds = data::class_subset(ds, o.classes);
  const int64_t k = o.num_classes > 0 ? o.num_classes : ds->num_classes();
  auto model = models::create_model(o.model, {k});
  const auto report = models::load_weights(*model, o.weights);
  TETHER_CHECK(report.head_loaded, "--weights '", o.weights, "' has no ", k, "-class head (", model->head_name(),
               "); give --num-classes to match the file");
  data::TransformOptions t;
  t.augment = o.augment;  // the training run's: decides the evaluation resize (make_eval_pipeline)
  t.input_size = static_cast<int>(o.input_size);
  t.resize_size = static_cast<int>(o.resize_size);
  t.interpolation = data::parse_interpolation(o.interpolation);
  t.mean = {o.mean[0], o.mean[1], o.mean[2]};
  t.std = {o.std[0], o.std[1], o.std[2]};
  t.ten_crop = o.ten_crop;
  data::LoaderOptions l;
  l.batch_size = o.batch_size, l.shuffle = false, l.drop_last = false, l.workers = static_cast<int>(o.workers);
  data::Loader loader(ds, data::make_eval_pipeline(t), l);

  std::ofstream csv;
  if (!o.predictions.empty()) {
    csv.open(o.predictions);
    TETHER_CHECK(csv.good(), "--predictions: cannot write '", o.predictions, "'");
    csv << "index,file,label,prediction,confidence\n";
  }
  const train::EvalResult r = train::evaluate(*model, loader, [&](const data::Batch& b, const auto& probs) {
    if (!csv.is_open()) return;
    const auto labels = b.labels.to_vector<int64_t>();
    for (size_t i = 0; i < probs.size(); ++i) {
      const auto& p = probs[i];
      const size_t pred = std::max_element(p.begin(), p.end()) - p.begin();
      csv << b.indices[i] << ",\"" << ds->describe(b.indices[i]) << "\"," << labels[i] << "," << pred << ","
          << p[pred] << "\n";
    }
  });
  std::cout << o.model << " on " << o.data << " (" << o.split << (o.ten_crop ? ", ten crops" : ", centre crop")
            << "): " << train::format_eval(r) << "\n";
  const auto& bad = loader.epoch_report();
  if (bad.skipped > 0) std::cout << "skipped " << bad.skipped << " unreadable image(s)\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate weights on a data split");
  cmd->add_option("--model", o->model, "Architecture")->required()->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--weights", o->weights, "Trained weights, head included")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", o->data, "ImageFolder root, or 'fashion-mnist'")->required();
  cmd->add_option("--split", o->split, "val (val/ or test/), test or train")->check(CLI::IsMember({"val", "test", "train"}));
  cmd->add_option("--classes", o->classes, "Keep only these classes, relabelled in this order")->delimiter(',');
  cmd->add_option("--num-classes", o->num_classes, "Classes of the head (0: from the data)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--input-size", o->input_size, "Input size")->check(CLI::PositiveNumber);
  cmd->add_option("--resize-size", o->resize_size, "Resize before the centre crop (0: input-size / 0.875)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--interpolation", o->interpolation, "bilinear or bicubic")->check(CLI::IsMember({"bilinear", "bicubic"}));
  cmd->add_option("--mean", o->mean, "Normalisation mean")->delimiter(',')->expected(3);
  cmd->add_option("--std", o->std, "Normalisation std")->delimiter(',')->expected(3);
  cmd->add_option("--augment", o->augment, "The training run's --augment (none: resize to input size; "
                                          "others: resize shorter side, centre crop)")
      ->check(CLI::IsMember({"none", "flip", "crop-flip", "rrc", "l2sp", "ptr"}));
  cmd->add_flag("--ten-crop", o->ten_crop, "Average the softmax over ten crops");
  cmd->add_option("--batch-size", o->batch_size, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--workers", o->workers, "Data loading threads")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", o->threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--predictions", o->predictions, "Write index,file,label,prediction,confidence per image");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace tether::cli
