// Penalties Ω(w) of SPEC 2, evaluated on every step on the current weights. Each penalty
// returns its parts as differentiable scalars (so their gradients flow through the same
// autograd as the loss) with names for the log: "omega.S" (the inherited part) and
// "omega.head" (the S̄ part). The trainer adds them to J and multiplies by the --reg-decay
// factor r^epoch through `scale`.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "regularizers/param_sets.h"

namespace tether::reg {

struct PenaltyOptions {
  std::string reg = "none";  // --reg
  double alpha = 0.0;        // --alpha: coefficient on S
  double beta = 0.0;         // --beta: coefficient on S̄
};

using Terms = std::vector<std::pair<std::string, Tensor>>;

class Penalty {
 public:
  virtual ~Penalty() = default;
  virtual std::string name() const = 0;
  // Ω's parts at the current weights, each already multiplied by its coefficient and `scale`.
  virtual Terms terms(double scale) const = 0;
};

// The penalty named by opts.reg, over `sets` (held by reference: keep them alive).
// "none" returns nullptr.
std::unique_ptr<Penalty> make_penalty(const PenaltyOptions& opts, const ParamSets& sets);
const std::vector<std::string>& penalty_names();

// Building blocks, also used by the tests as the closed forms:
// Σ_tensors ‖w‖² and Σ_tensors ‖w − w0‖² as differentiable scalars (0-d, undefined when empty).
Tensor sum_squares(const nn::NamedTensors& params);
Tensor sum_squared_distance(const nn::NamedTensors& params, const std::map<std::string, Tensor>& w0);

}  // namespace tether::reg
