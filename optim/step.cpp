// The step pipeline: direction hooks, the optimizer update, projection hooks (optim/step.h).
#include "optim/step.h"

#include <exception>

#include "autograd/grad_mode.h"
#include "core/check.h"

namespace tether::optim {
namespace {

// Runs one hook; an exception leaves it as a tether::Error prefixed with the hook's name.
void run_hook(const Hook& hook, const char* stage) {
  TETHER_CHECK(static_cast<bool>(hook.run), stage, " hook '", hook.name, "' has no function");
  try {
    hook.run();
  } catch (const std::exception& e) {
    throw Error(std::string(stage) + " hook '" + hook.name + "': " + e.what());
  }
}

}  // namespace

void StepPipeline::step(Optimizer& optimizer) const {
  for (const Hook& hook : direction) run_hook(hook, "direction");  // 1. rewrite the gradients
  optimizer.step();                                                  // 2. the update
  NoGradGuard no_grad;                                               // 3. back into the constraint set
  for (const Hook& hook : projection) run_hook(hook, "projection");
}

}  // namespace tether::optim
