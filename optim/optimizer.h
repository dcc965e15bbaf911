// Optimizers with PyTorch's update formulas exactly (torch.optim.SGD, Adam, AdamW, single-tensor
// "for-loop" implementations of torch 1.13), over parameter groups, and their checkpointable state.
//
// An optimizer reads each parameter's .grad (undefined grad: the parameter is skipped and gets no
// state, as in PyTorch) and updates the parameter in place, with raw loops that autograd never
// sees. The learning rate of a group is base_lr * lr_mult; the schedule sets base_lr each
// iteration through set_lr(). Parameters are contiguous f32 or f64 tensors, all on one device;
// each gradient must have its parameter's shape, dtype and device. On the CPU each parameter is
// updated by its own loop; on a CUDA device one fused multi-tensor kernel updates a whole group
// (optim/cuda/fused_updates.h) with the same formulas and rounding.
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
  std::string name = {};                // "inherited", "head"
  std::vector<std::string> names = {};  // parameter names (state keys, messages); unique over all groups
  std::vector<Tensor> params = {};      // leaves that require grad
  double lr_mult = 1.0;                 // --head-lr-mult for the head group
  double weight_decay = 0.0;            // coupled (sgd, adam) or decoupled (adamw)
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);  // checks names, shapes, dtypes, lr_mult, weight_decay
  virtual ~Optimizer() = default;

  // One update from the current .grad of every parameter (those without one are skipped, as
  // PyTorch's `if p.grad is not None`): update() per parameter (CPU) or update_group() per group
  // (CUDA), then the step count.
  void step();
  virtual std::string name() const = 0;  // "sgd", "adam", "adamw"
  void set_lr(double base_lr);       // checks base_lr >= 0
  double base_lr() const { return base_lr_; }
  double group_lr(size_t g) const { return base_lr_ * groups_[g].lr_mult; }
  void zero_grad();                  // drops every parameter's .grad
  const std::vector<ParamGroup>& groups() const { return groups_; }
  int64_t steps() const { return steps_; }

  // Checkpoint state, PyTorch's state_dict split in two:
  // - state_tensors(): per-parameter buffers named "<param>.<buffer>" (e.g.
  //   "layer1.0.conv1.weight.momentum_buffer", ".exp_avg", ".exp_avg_sq", ".max_exp_avg_sq"),
  //   only for parameters that have been updated; copies, not the live buffers.
  // - state_json(): {"optimizer": name(), "base_lr": x, "steps": n,
  //                  "param_steps": {"<param>": updates applied to it, ...}}  (Adam's step counts;
  //   a parameter skipped for lack of a gradient counts fewer steps, as in PyTorch).
  // load_state replaces the whole state (parameters absent from it get none). It first checks
  // everything: the optimizer name, every key names a known parameter and buffer, shapes equal,
  // each updated parameter has all its buffers and a step count and vice versa (Error naming the
  // key); only then does it change anything, so a failed load leaves the optimizer as it was.
  std::map<std::string, Tensor> state_tensors() const;
  nlohmann::json state_json() const;
  void load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& json);

 protected:
  // The state of one parameter, created at its first update (PyTorch's lazy state).
  struct ParamState {
    int64_t step = 0;             // updates applied to this parameter
    std::vector<Tensor> buffers;  // one per buffer_names(), contiguous, the parameter's dtype; empty at step 0
  };
  // Names of the per-parameter buffers, in ParamState::buffers order ("momentum_buffer"; or
  // "exp_avg", "exp_avg_sq"[, "max_exp_avg_sq"]); empty for plain SGD.
  virtual std::vector<std::string> buffer_names() const = 0;
  // The gradient of parameter i of group g as a contiguous tensor, or undefined when it has none.
  Tensor grad_of(size_t g, size_t i) const;
  // The optimizer's formula for one parameter, at the group's lr and weight decay.
  virtual void update(const Tensor& param, const Tensor& grad, ParamState& state, double lr,
                      double weight_decay) const = 0;
  // The same formula for every parameter of a group that has a gradient, on a CUDA device: one
  // fused multi-tensor call, the state created lazily as update() creates it.
  struct Pending {
    Tensor param, grad;
    ParamState* state;
  };
  virtual void update_group(const std::vector<Pending>& params, double lr, double weight_decay) const = 0;

  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
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

// Both check their options as PyTorch's constructors do (Error naming the option): lr >= 0,
// momentum >= 0, nesterov needs momentum > 0 and dampening 0, betas in [0, 1), eps > 0 (PyTorch
// allows 0, which divides 0 by 0 where a gradient is zero), weight_decay >= 0 (per group).
std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups, const SGDOptions& opts);
std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups, const AdamOptions& opts);

}  // namespace tether::optim
