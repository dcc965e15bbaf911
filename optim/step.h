// The step pipeline (DESIGN.md, Caffe's ApplyUpdate): after backward has filled .grad,
//   1. direction hooks   may rewrite the gradients (DTNH: the corrected descent direction)
//   2. optimizer update  SGD / Adam / AdamW
//   3. projection hooks  map the parameters back into the constraint set (L2-PGM, MARS-PGM)
// A reader sees the whole update here; each regularizer plugs into one named hook.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace tether::optim {

struct Hook {
  std::string name;            // for logs and errors: "dtnh", "mars-pgm"
  std::function<void()> run;
};

struct StepPipeline {
  std::vector<Hook> direction;   // run before the update, with grad mode on or off as they need
  std::vector<Hook> projection;  // run after the update, under no-grad
  // Runs direction hooks, optimizer.step(), then projection hooks (under NoGradGuard).
  void step(Optimizer& optimizer) const;
};

}  // namespace tether::optim
