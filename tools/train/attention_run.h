// DELTA's channel attention (SPEC 5 steps 1–4) for a training run's data: what `tether attention`
// computes and prints, and what the demo computes for its delta runs.
#pragma once
#include <cstdint>
#include <ostream>

#include "tools/train/options.h"

namespace tether::train {

struct AttentionSettings {
  int64_t epochs = 10, batches = 4;  // --att-epochs, --att-batches
  double temperature = 5;            // --att-temperature
};

// Uses o.model, o.weights (w0), the data flags (load_train_data: the run's training set),
// o.taps, o.batch_size, o.seed and the evaluation pipeline flags; writes o.attention. Progress
// and the per-tap summary go to `log`.
void compute_attention(const TrainOptions& o, const AttentionSettings& a, std::ostream& log);

}  // namespace tether::train
