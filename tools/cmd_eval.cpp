// `tether eval`: top-1/top-5/mean per-class accuracy, loss and predictive entropy of trained
// weights on a split (centre crop or ten crops), with an optional predictions CSV.
// `--source-head W0 --data SOURCE`: the fine-tuned backbone under the pretrained model's own
// head, on the source task, next to the pretrained model itself: how much of the source task
// fine-tuning kept (the L2-SP paper's Table 5).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <omp.h>

#include "data/loader.h"
#include "models/registry.h"
#include "core/safetensors.h"
#include "models/weights.h"
#include "tools/commands.h"
#include "tools/train/device.h"
#include "tools/train/evaluate.h"
#include "tools/train/trainer.h"

namespace tether::cli {
namespace {

// The evaluation-related subset of `tether train`'s options (same names, same meaning), plus
// the split and a predictions file.
struct EvalOptions {
  train::TrainOptions t;
  std::string split = "val", predictions;
  std::string source_head;  // W0: evaluate --weights' backbone under W0's head
};

// The source model's head, by torchvision name, and its number of classes.
std::map<std::string, Tensor> source_head_tensors(const std::string& model_name, const std::string& path) {
  const auto probe = models::create_model(model_name, {1});
  const auto tensors = models::to_torchvision_names(safetensors::load(path).tensors, *probe);
  const std::string head = probe->head_name() + ".";
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors)
    if (name.rfind(head, 0) == 0) out[name] = t;
  TETHER_CHECK(out.count(head + "weight"), "--source-head '", path, "' has no head (", head, "weight)");
  return out;
}

void run_eval(const EvalOptions& e) {
  const train::TrainOptions& o = e.t;
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const Device device = train::setup_device(o.device, o.tf32);
  data::DatasetPtr ds = o.data == "fashion-mnist" ? data::fashion_mnist(e.split == "train" ? "train" : "test")
                                                  : data::image_folder_split(o.data, e.split);
  if (!o.classes.empty()) ds = data::class_subset(ds, o.classes);
  data::Loader loader(ds, data::make_eval_pipeline(train::transform_options(o)), train::pinned_for(train::loader_options(o, false), device));
  const std::string where = o.model + " on " + o.data + " (" + e.split + (o.ten_crop ? ", ten crops)" : ", centre crop)");

  models::ModelPtr model;
  std::optional<train::EvalResult> pretrained;  // --source-head: W0 itself on the source task
  if (e.source_head.empty()) {
    const int64_t k = o.num_classes > 0 ? o.num_classes : ds->num_classes();
    model = models::create_model(o.model, {k});
    const auto report = models::load_weights(*model, o.weights);
    TETHER_CHECK(report.head_loaded, "--weights '", o.weights, "' has no ", k, "-class head (", model->head_name(),
                 "); give --num-classes to match the file");
    model->to(device);
  } else {
    const auto head = source_head_tensors(o.model, e.source_head);
    const int64_t k = head.begin()->second.size(0);
    TETHER_CHECK(k >= ds->num_classes(), "--source-head '", e.source_head, "' has ", k, " classes but --data ", o.data,
                 " has ", ds->num_classes(), ": give the source task's data");
    auto source = models::create_model(o.model, {k});
    models::load_weights(*source, e.source_head);
    source->to(device);
    pretrained = train::evaluate(*source, loader);
    std::cout << where << ", the pretrained model " << e.source_head << ": " << train::format_eval(*pretrained) << "\n";
    model = models::create_model(o.model, {k});
    models::load_weights(*model, o.weights);     // the fine-tuned backbone (its own head has another task's shape)
    model->load_state_dict(head, /*strict=*/false);  // under the source head
    model->to(device);
  }

  std::ofstream csv;
  if (!e.predictions.empty()) {
    csv.open(e.predictions);
    TETHER_CHECK(csv.good(), "--predictions: cannot write '", e.predictions, "'");
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
  std::cout << where << (e.source_head.empty() ? "" : ", " + o.weights + "'s backbone under the source head") << ": "
            << train::format_eval(r) << "\n";
  if (pretrained)
    std::printf("source-task top-1 drop after fine-tuning: %.2f points (%.2f%% -> %.2f%%)\n",
                100 * (pretrained->top1 - r.top1), 100 * pretrained->top1, 100 * r.top1);
  const auto& bad = loader.epoch_report();
  if (bad.skipped > 0) std::cout << "skipped " << bad.skipped << " unreadable image(s)\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto e = std::make_shared<EvalOptions>();
  train::TrainOptions& o = e->t;
  o.batch_size = 64;
  auto* cmd = app.add_subcommand("eval", "Evaluate weights on a data split");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--model", o.model, "Architecture")->required()->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--weights", o.weights, "Trained weights, head included")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", o.data, "ImageFolder root, or 'fashion-mnist'")->required();
  cmd->add_option("--split", e->split, "val (val/ or test/), test or train")->check(CLI::IsMember({"val", "test", "train"}));
  cmd->add_option("--classes", o.classes, "Keep only these classes, relabelled in this order")->delimiter(',');
  cmd->add_option("--num-classes", o.num_classes, "Classes of the head (0: from the data)")->check(CLI::NonNegativeNumber);
  train::add_eval_pipeline_flags(*cmd, o);
  cmd->add_flag("--ten-crop", o.ten_crop, "Average the softmax over ten crops");
  cmd->add_option("--batch-size", o.batch_size, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--on-bad-image", o.on_bad_image, "skip (warn and count) or error")->check(CLI::IsMember({"skip", "error"}));
  cmd->add_option("--predictions", e->predictions, "Write index,file,label,prediction,confidence per image");
  cmd->add_option("--source-head", e->source_head,
                  "Pretrained weights W0: evaluate --weights' backbone under W0's head on --data (the source task), "
                  "next to W0 itself")->check(CLI::ExistingFile);
  cmd->callback([e] { run_eval(*e); });
}

}  // namespace tether::cli
