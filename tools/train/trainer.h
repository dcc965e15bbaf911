// `tether train` as a library call: builds data, model, parameter sets, penalty, optimizer
// and schedule from TrainOptions, runs the loop of SPEC 8, evaluates, logs and checkpoints.
// tools/cmd_train.cpp parses flags into TrainOptions; the demo calls run_training directly.
#pragma once
#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "data/loader.h"
#include "tools/train/evaluate.h"
#include "tools/train/options.h"

namespace tether::train {

struct TrainData {
  data::DatasetPtr train, val;  // val may be null (no evaluation)
};
// --data (ImageFolder root or "fashion-mnist"), then --classes, --val-split, --per-class.
TrainData load_train_data(const TrainOptions& opts);
// The transform and loader options the flags describe (also used by `tether eval`).
data::TransformOptions transform_options(const TrainOptions& opts);
data::LoaderOptions loader_options(const TrainOptions& opts, bool training);

struct TrainSummary {
  int64_t steps = 0;
  EvalResult final_eval, best_eval;
  bool evaluated = false;
  double seconds = 0;
  double distance_from_w0 = 0;  // ‖w − w0‖ over S (SPEC 1), at the end
  bool interrupted = false;     // SIGINT: a checkpoint was written; the CLI exits 130
};

// A non-finite loss: the message names the step and the loss parts; nothing was updated or
// written for that step, so the last checkpoint is the last good state.
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

TrainSummary run_training(const TrainOptions& opts);

}  // namespace tether::train
