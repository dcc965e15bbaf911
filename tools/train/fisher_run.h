// The diagonal Fisher of SPEC 4 for a weights file on a data set: what `tether fisher` computes
// and prints, and what the demo computes once for its Fisher-weighted methods.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "models/model.h"
#include "tools/train/options.h"

namespace tether::train {

struct FisherRun {
  std::map<std::string, Tensor> fisher;  // one tensor per parameter of the model
  models::ModelPtr model;                // the source model (weights loaded)
  int64_t backward_passes = 0;
  double seconds = 0;
};

// Uses o.model, o.weights (head included), o.data (its training set: ImageFolder train/,
// --train-list or "fashion-mnist"), o.classes, o.num_classes, o.seed and the evaluation pipeline
// flags. The first `samples` images of a seeded permutation, in that order; mode = exact |
// sampled | empirical. Throws naming the flag or file on bad input.
FisherRun compute_fisher_on_data(const TrainOptions& o, int64_t samples, const std::string& mode);

}  // namespace tether::train
