// Optimizers with PyTorch's update formulas exactly (torch.optim.SGD, Adam, AdamW, single-tensor
// "for-loop" implementations), over parameter groups, and their checkpointable state.
//
// An optimizer reads each parameter's .grad (undefined grad: the parameter is skipped, as in
// PyTorch) and updates the parameter in place under no-grad. The learning rate of a group is
// base_lr * lr_mult; the schedule sets base_lr each iteration through set_lr().
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace tether::optim {

struct ParamGroup {
  std::string name;                 // "inherited", "head"
  std::vector<std::string> names;   // parameter names (state keys, messages)
  std::vector<Tensor> params;       // leaves that require grad
  double lr_mult = 1.0;             // --head-lr-mult for the head group
  double weight_decay = 0.0;        // coupled (sgd, adam) or decoupled (adamw)
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;

  virtual void step() = 0;           // one update from the current .grad of every parameter
  virtual std::string name() const = 0;
  void set_lr(double base_lr) { base_lr_ = base_lr; }
  double base_lr() const { return base_lr_; }
  double group_lr(size_t g) const { return base_lr_ * groups_[g].lr_mult; }
  void zero_grad();                  // drops every parameter's .grad
  const std::vector<ParamGroup>& groups() const { return groups_; }
  int64_t steps() const { return steps_; }

  // Checkpoint state: per-parameter buffers named "<param>.<buffer>" (e.g.
  // "layer1.0.conv1.weight.momentum_buffer", ".exp_avg", ".exp_avg_sq", ".max_exp_avg_sq") and
  // scalars (step count, base lr) as JSON. load_state checks names and shapes (Error naming
  // the key) and never half-loads.
  virtual std::map<std::string, Tensor> state_tensors() const = 0;
  nlohmann::json state_json() const;
  void load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& json);

 protected:
  virtual void load_state_tensors(const std::map<std::string, Tensor>& tensors) = 0;
  std::vector<ParamGroup> groups_;
  double base_lr_ = 0.0;
  int64_t steps_ = 0;
};

struct SGDOptions {
  double lr = 0.01, momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
};
struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  bool decoupled_weight_decay = false;  // true: AdamW
};

std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups, const SGDOptions& opts);
std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups, const AdamOptions& opts);

}  // namespace tether::optim
