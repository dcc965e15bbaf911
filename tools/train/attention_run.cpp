#include "tools/train/attention_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>

#include "core/random.h"
#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "regularizers/attention.h"
#include "regularizers/source_network.h"
#include "tools/train/device.h"
#include "tools/train/trainer.h"

namespace tether::train {

void compute_attention(const TrainOptions& o, const AttentionSettings& a, std::ostream& log) {
  TETHER_CHECK(a.temperature > 0 && std::isfinite(a.temperature), "--att-temperature must be > 0 and finite, got ",
               a.temperature);
  const auto start = std::chrono::steady_clock::now();

  const TrainData data = load_train_data(o);
  const int64_t k = o.num_classes > 0 ? o.num_classes : data.train->num_classes();
  manual_seed(o.seed);
  auto model = models::create_model(o.model, {k});
  models::load_weights(*model, o.weights);
  model->reset_head(k);  // step 1: a fresh head (PyTorch's default init, seeded)
  const Device device = setup_device(o.device, o.tf32);
  model->to(device);
  const std::vector<std::string> taps = o.taps.empty() ? model->default_taps() : o.taps;
  reg::check_tap_names(*model, taps);

  // Step 1: every training image once through the frozen backbone (no augmentation), then the
  // head. The pass is in a seeded shuffled order, so that step 2's "first --att-batches batches"
  // are a sample of every class rather than the first class of the class-major dataset order.
  data::LoaderOptions lo = loader_options(o, false);
  lo.shuffle = true;
  lo.drop_last = false;
  data::Loader loader(data.train, data::make_eval_pipeline(transform_options(o)), pinned_for(lo, device));
  loader.start_epoch(0);
  std::vector<Tensor> reps, labels;
  std::vector<std::pair<Tensor, Tensor>> measured;  // step 2's batches
  data::Batch batch;
  while (loader.next(batch)) {
    const DeviceBatch b = to_device(batch, device);
    reps.push_back(reg::representation(*model, b.images));
    labels.push_back(b.labels);
    if (static_cast<int64_t>(measured.size()) < a.batches) measured.emplace_back(b.images, b.labels);
  }
  TETHER_CHECK(!reps.empty(), "attention: the training set of ", o.data, " is empty");
  reg::HeadTrainingOptions head;
  head.epochs = a.epochs;
  head.batch_size = o.batch_size;
  head.seed = o.seed;
  const double head_loss = reg::train_head(*model, ops::cat(reps, 0), ops::cat(labels, 0), head);
  log << "head trained on the frozen " << o.model << " backbone: " << a.epochs << " epochs over "
            << data.train->size() << " images, last epoch's mean CE " << std::fixed << std::setprecision(4) << head_loss
            << "\n";

  // Steps 2 and 3.
  const auto increase = reg::channel_loss_increase(*model, taps, measured);
  std::map<std::string, std::vector<double>> attention;
  for (const auto& [tap, delta] : increase) {
    attention[tap] = reg::attention_from_increase(delta, a.temperature);
    const auto& at = attention[tap];
    log << "  " << std::left << std::setw(16) << tap << std::right << std::setw(6) << at.size()
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
  log << "wrote " << o.attention << " (" << std::setprecision(1) << seconds << " s)\n";
}

}  // namespace tether::train
