// `tether analyze`: analyses of fine-tuned weights (issue 7), computed by tools/train/analysis.h.
//   --r2 OUT.csv: per tap layer, the R² of each channel's fine-tuned activations regressed on the
//     pretrained ones (--source) over the split (the L2-SP paper's Figure 4): tap,channel,r2 rows,
//     and a printed per-tap distribution (min, quartiles, median, max, mean).
//   --predictions-stats: the PtR paper's prediction statistics of --weights on the split (sum of
//     the probability-confusion diagonal, off-diagonal sum, mean entropy in bits), with top-1.
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "data/loader.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/train/device.h"
#include "tools/train/analysis.h"
#include "tools/train/evaluate.h"
#include "tools/train/trainer.h"

namespace tether::cli {
namespace {

struct AnalyzeOptions {
  train::TrainOptions t;
  std::string split = "val", source, r2_csv, json;
  std::vector<std::string> taps;
  bool prediction_stats = false;
  int64_t max_images = 0;
};

// The split, --classes, then at most --max-images images evenly spaced over it (ImageFolder
// order is class-major, so the first N would miss classes).
data::DatasetPtr analysis_data(const AnalyzeOptions& a) {
  const train::TrainOptions& o = a.t;
  data::DatasetPtr ds = o.data == "fashion-mnist" ? data::fashion_mnist(a.split == "train" ? "train" : "test")
                                                  : data::image_folder_split(o.data, a.split);
  if (!o.classes.empty()) {
    for (int64_t c : o.classes)
      TETHER_CHECK(c >= 0 && c < ds->num_classes(), "--classes: class ", c, " does not exist (the data has ",
                   ds->num_classes(), " classes)");
    ds = data::class_subset(ds, o.classes);
  }
  if (a.max_images > 0 && a.max_images < ds->size()) {
    std::vector<int64_t> keep(static_cast<size_t>(a.max_images));
    for (int64_t i = 0; i < a.max_images; ++i) keep[static_cast<size_t>(i)] = i * ds->size() / a.max_images;
    ds = data::subset(ds, keep);
  }
  return ds;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
  return s;
}

void print_r2(const std::vector<train::TapR2>& rows) {
  std::cout << "R² of fine-tuned on pretrained activations, per channel (" << rows.front().observations
            << " observations per channel at " << rows.front().tap << ")\n";
  std::cout << std::left << std::setw(14) << "tap" << std::right << std::setw(9) << "channels";
  for (const char* h : {"min", "q1", "median", "q3", "max", "mean"}) std::cout << std::setw(9) << h;
  std::cout << "\n" << std::fixed << std::setprecision(4);
  for (const auto& t : rows) {
    const train::Distribution d = train::describe(t.r2);
    std::cout << std::left << std::setw(14) << t.tap << std::right << std::setw(9) << t.r2.size();
    for (double v : {d.min, d.q1, d.median, d.q3, d.max, d.mean}) std::cout << std::setw(9) << v;
    std::cout << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
}

void run_analyze(const AnalyzeOptions& a) {
  const train::TrainOptions& o = a.t;
  TETHER_CHECK(!a.r2_csv.empty() || a.prediction_stats, "analyze: nothing to do; give --r2 OUT.csv and/or "
                                                         "--predictions-stats");
  TETHER_CHECK(a.r2_csv.empty() || !a.source.empty(), "--r2 needs --source (the pretrained weights to regress on)");
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));

  const data::DatasetPtr ds = analysis_data(a);
  TETHER_CHECK(ds->size() > 0, "--data: no images in '", o.data, "' (", a.split, ")");
  bool head_loaded = false;
  // The fine-tuned model's head: --num-classes, else the file's (its own head size).
  const models::ModelPtr tuned = train::load_model_for_file(o.model, o.weights, o.num_classes, &head_loaded);
  const Device device = train::setup_device(o.device, o.tf32);
  tuned->to(device);
  std::vector<std::string> taps = a.taps.empty() ? tuned->default_taps() : a.taps;
  for (const auto& t : taps) {
    bool known = true;
    try {
      tuned->submodule(t);
    } catch (const Error&) {
      known = false;
    }
    TETHER_CHECK(known, "--taps: '", t, "' is not a module of ", o.model, " (its default taps: ",
                 join(tuned->default_taps()), ")");
  }
  if (a.prediction_stats)
    TETHER_CHECK(head_loaded && tuned->num_classes() >= ds->num_classes(), "--predictions-stats: the head of --weights '",
                 o.weights, "' (", tuned->head_name(), ", ", tuned->num_classes(),
                 " outputs) does not cover the data's ", ds->num_classes(),
                 " classes; give --classes or --num-classes to match the file");

  const data::Pipeline pipeline = data::make_eval_pipeline(train::transform_options(o));
  nlohmann::json out = {{"model", o.model}, {"weights", o.weights}, {"data", o.data}, {"split", a.split},
                        {"images", ds->size()}};
  if (!a.r2_csv.empty()) {
    // The source model with its own head size (the taps are backbone outputs).
    const models::ModelPtr source = train::load_model_for_file(o.model, a.source, 0);
    source->to(device);
    data::Loader loader(ds, pipeline, train::loader_options(o, false));
    const auto rows = train::feature_r2(*source, *tuned, taps, loader);
    train::write_r2_csv(a.r2_csv, rows);
    print_r2(rows);
    std::cout << "wrote " << a.r2_csv << "\n";
    for (const auto& t : rows) {
      const train::Distribution d = train::describe(t.r2);
      out["r2"][t.tap] = {{"channels", t.r2.size()}, {"min", d.min},   {"q1", d.q1},    {"median", d.median},
                          {"q3", d.q3},              {"max", d.max},   {"mean", d.mean}};
    }
  }
  if (a.prediction_stats) {
    data::Loader loader(ds, pipeline, train::loader_options(o, false));
    train::PredictionStatsAccumulator acc(tuned->num_classes());
    const train::EvalResult e = train::evaluate(*tuned, loader, [&](const data::Batch& b, const auto& probs) {
      acc.add(probs, b.labels.to_vector<int64_t>());
    });
    const train::PredictionStats s = acc.result();
    std::printf("predictions of %s on %s (%s, %lld images, %lld classes present): confusion diagonal sum %.4f, "
                "off-diagonal sum %.4f, mean entropy %.4f bits, top1 %.2f%%\n",
                o.model.c_str(), o.data.c_str(), a.split.c_str(), static_cast<long long>(s.samples),
                static_cast<long long>(s.classes_present), s.diagonal_sum, s.off_diagonal_sum, s.entropy_bits,
                100 * e.top1);
    out["predictions"] = {{"samples", s.samples},           {"classes_present", s.classes_present},
                          {"diagonal_sum", s.diagonal_sum}, {"off_diagonal_sum", s.off_diagonal_sum},
                          {"entropy_bits", s.entropy_bits}, {"top1", e.top1},
                          {"confusion", s.confusion}};
  }
  if (!a.json.empty()) {
    std::ofstream f(a.json);
    f << out.dump(2) << "\n";
    TETHER_CHECK(f.good(), "--json: cannot write '", a.json, "'");
  }
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  auto a = std::make_shared<AnalyzeOptions>();
  train::TrainOptions& o = a->t;
  o.batch_size = 64;
  auto* cmd = app.add_subcommand("analyze", "Analyses of fine-tuned weights: feature R² (--r2), prediction "
                                            "statistics (--predictions-stats)");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--model", o.model, "Architecture")->required()->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--weights", o.weights, "Fine-tuned weights")->required()->check(CLI::ExistingFile);
  cmd->add_option("--source", a->source, "Pretrained weights (w0), for --r2")->check(CLI::ExistingFile);
  cmd->add_option("--data", o.data, "ImageFolder root, or 'fashion-mnist'")->required();
  cmd->add_option("--split", a->split, "val (val/ or test/), test or train")->check(CLI::IsMember({"val", "test", "train"}));
  cmd->add_option("--r2", a->r2_csv, "Write tap,channel,r2 per channel of every tap");
  cmd->add_option("--taps", a->taps, "Tap modules for --r2 (default: the model's, SPEC 5)")->delimiter(',');
  cmd->add_flag("--predictions-stats", a->prediction_stats,
                "Probability-confusion diagonal and off-diagonal sums, mean entropy in bits");
  cmd->add_option("--json", a->json, "Also write the summaries as JSON");
  cmd->add_option("--classes", o.classes, "Keep only these classes, relabelled in this order")->delimiter(',');
  cmd->add_option("--num-classes", o.num_classes, "Classes of the fine-tuned head (0: the file's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-images", a->max_images, "At most N images, evenly spaced over the split (0: all)")
      ->check(CLI::NonNegativeNumber);
  train::add_eval_pipeline_flags(*cmd, o);
  cmd->add_flag("--ten-crop", o.ten_crop, "Average the softmax over ten crops (--predictions-stats)");
  cmd->add_option("--batch-size", o.batch_size, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--on-bad-image", o.on_bad_image, "skip (warn and count) or error")->check(CLI::IsMember({"skip", "error"}));
  cmd->callback([a] { run_analyze(*a); });
}

}  // namespace tether::cli
