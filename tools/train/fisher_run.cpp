#include "tools/train/fisher_run.h"

#include <chrono>

#include "autograd/ops.h"
#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "regularizers/fisher.h"
#include "tools/train/device.h"
#include "tools/train/trainer.h"

namespace tether::train {
namespace {

// --data (ImageFolder root's train/, a --train-list, or "fashion-mnist"'s training set), then --classes.
data::DatasetPtr fisher_data(const TrainOptions& o) {
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

}  // namespace

FisherRun compute_fisher_on_data(const TrainOptions& o, int64_t samples, const std::string& mode_name) {
  const reg::FisherMode mode = reg::parse_fisher_mode(mode_name);
  TETHER_CHECK(samples > 0, "--samples must be positive, got ", samples);
  const data::DatasetPtr all = fisher_data(o);
  TETHER_CHECK(samples <= all->size(), "--samples ", samples, " is larger than the data (", all->size(), " images in ",
               o.data, ")");
  // The first N of a seeded permutation (Fisher–Yates), kept in that order.
  std::vector<int64_t> order(static_cast<size_t>(all->size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  Generator shuffle(o.seed ^ 0x5348554646ULL);  // a stream apart from the class draws of `sampled`
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.next_below(i)]);
  order.resize(static_cast<size_t>(samples));
  const data::DatasetPtr ds = data::subset(all, order);

  FisherRun run;
  const int64_t k = o.num_classes > 0 ? o.num_classes : all->num_classes();
  run.model = models::create_model(o.model, {k});
  const auto report = models::load_weights(*run.model, o.weights);
  TETHER_CHECK(report.head_loaded, "--weights '", o.weights, "' has no ", k, "-class head (", run.model->head_name(),
               "); give --num-classes to match the file");
  const Device device = setup_device(o.device, o.tf32);
  run.model->to(device);

  data::LoaderOptions lo = loader_options(o, false);
  lo.batch_size = 16;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.on_bad_image = data::OnBadImage::error;  // exactly the first N images, or an error naming the file
  data::Loader loader(ds, data::make_eval_pipeline(transform_options(o)), pinned_for(lo, device));

  const auto start = std::chrono::steady_clock::now();
  reg::FisherAccumulator acc(*run.model, mode, o.seed);
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) {
    const auto labels = batch.labels.to_vector<int64_t>();
    for (int64_t i = 0; i < batch.size(); ++i) acc.add(narrow(batch.images, 0, i, 1).to(device), labels[i]);
  }
  TETHER_CHECK(acc.samples() == samples, "fisher: the loader delivered ", acc.samples(), " of ", samples, " images");
  run.fisher = acc.result();
  run.backward_passes = acc.backward_passes();
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace tether::train
