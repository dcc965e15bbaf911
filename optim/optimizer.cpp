// The optimizer base: parameter groups, gradients, and the checkpointable per-parameter state
// (torch.optim.Optimizer's state_dict / load_state_dict, keyed by parameter name instead of index).
#include "optim/optimizer.h"

#include <cmath>
#include <set>

#include "core/ops.h"

namespace tether::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  std::set<std::string> seen;
  const Tensor* first = nullptr;  // every parameter lives on this one's device
  for (const ParamGroup& group : groups_) {
    TETHER_CHECK(group.names.size() == group.params.size(), "parameter group '", group.name, "' has ",
                 group.params.size(), " parameters but ", group.names.size(), " names");
    TETHER_CHECK(group.lr_mult >= 0 && std::isfinite(group.lr_mult), "parameter group '", group.name,
                 "': invalid lr_mult ", group.lr_mult, " (must be >= 0)");
    TETHER_CHECK(group.weight_decay >= 0 && std::isfinite(group.weight_decay), "parameter group '", group.name,
                 "': invalid weight_decay value ", group.weight_decay, " (must be >= 0)");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const std::string& name = group.names[i];
      const Tensor& p = group.params[i];
      TETHER_CHECK(seen.insert(name).second, "parameter '", name, "' appears twice in the optimizer's groups");
      TETHER_CHECK(p.defined(), "parameter '", name, "' is undefined");
      TETHER_CHECK(is_floating(p.dtype()), "parameter '", name, "' is ", dtype_name(p.dtype()),
                   ", the optimizer updates f32/f64 tensors");
      if (!first) first = &p;
      TETHER_CHECK(p.device() == first->device(), "parameter '", name, "' is on ", p.device().str(),
                   ", the optimizer's other parameters on ", first->device().str());
      TETHER_CHECK(p.is_contiguous(), "parameter '", name, "' is not contiguous");
    }
  }
  state_.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) state_[g].resize(groups_[g].params.size());
}

void Optimizer::set_lr(double base_lr) {
  TETHER_CHECK(base_lr >= 0 && std::isfinite(base_lr), "invalid learning rate (lr) ", base_lr, " (must be >= 0)");
  base_lr_ = base_lr;
}

void Optimizer::zero_grad() {
  for (const ParamGroup& group : groups_)
    for (const Tensor& p : group.params) p.zero_grad();
}

void Optimizer::step() {
  for (size_t g = 0; g < groups_.size(); ++g) {
    if (!groups_[g].params.empty() && groups_[g].params.front().device().is_cuda()) {
      std::vector<Pending> pending;
      for (size_t i = 0; i < groups_[g].params.size(); ++i) {
        Tensor grad = grad_of(g, i);
        if (grad.defined()) pending.push_back({groups_[g].params[i], std::move(grad), &state_[g][i]});
      }
      if (!pending.empty()) update_group(pending, group_lr(g), groups_[g].weight_decay);
      continue;
    }
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor grad = grad_of(g, i);
      if (!grad.defined()) continue;  // PyTorch: `if p.grad is not None`
      update(groups_[g].params[i], grad, state_[g][i], group_lr(g), groups_[g].weight_decay);
    }
  }
  ++steps_;
}

Tensor Optimizer::grad_of(size_t g, size_t i) const {
  const Tensor& p = groups_[g].params[i];
  Tensor grad = p.grad();
  if (!grad.defined()) return grad;
  const std::string& name = groups_[g].names[i];
  TETHER_CHECK(grad.shape() == p.shape(), "gradient of '", name, "' has shape ", shape_str(grad.shape()),
               ", the parameter ", shape_str(p.shape()));
  TETHER_CHECK(grad.dtype() == p.dtype(), "gradient of '", name, "' is ", dtype_name(grad.dtype()),
               ", the parameter ", dtype_name(p.dtype()));
  TETHER_CHECK(grad.device() == p.device(), "gradient of '", name, "' is on another device than the parameter");
  return ops::contiguous(grad);
}

// ---- checkpoint state ---------------------------------------------------------------------

std::map<std::string, Tensor> Optimizer::state_tensors() const {
  const std::vector<std::string> buffers = buffer_names();
  std::map<std::string, Tensor> out;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const ParamState& st = state_[g][i];
      for (size_t b = 0; b < st.buffers.size(); ++b)
        out[groups_[g].names[i] + "." + buffers[b]] = st.buffers[b].clone();
    }
  return out;
}

nlohmann::json Optimizer::state_json() const {
  nlohmann::json steps = nlohmann::json::object();
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i)
      if (state_[g][i].step > 0) steps[groups_[g].names[i]] = state_[g][i].step;
  return {{"optimizer", name()}, {"base_lr", base_lr_}, {"steps", steps_}, {"param_steps", steps}};
}

namespace {

int64_t json_count(const nlohmann::json& value, const std::string& key, int64_t min) {
  TETHER_CHECK(value.is_number_integer() && value.get<int64_t>() >= min, "optimizer state: '", key,
               "' must be an integer >= ", min, ", got ", value.dump());
  return value.get<int64_t>();
}

}  // namespace

void Optimizer::load_state(const std::map<std::string, Tensor>& tensors, const nlohmann::json& json) {
  // 1. Check everything, building the new state aside.
  TETHER_CHECK(json.is_object(), "optimizer state: expected a JSON object, got ", json.dump());
  for (const char* key : {"optimizer", "base_lr", "steps", "param_steps"})
    TETHER_CHECK(json.contains(key), "optimizer state: missing '", key, "'");
  TETHER_CHECK(json["optimizer"] == name(), "optimizer state: saved by optimizer ", json["optimizer"].dump(),
               ", loading into '", name(), "'");
  TETHER_CHECK(json["base_lr"].is_number() && json["base_lr"].get<double>() >= 0, "optimizer state: 'base_lr' must be a number >= 0, got ",
               json["base_lr"].dump());
  const double base_lr = json["base_lr"].get<double>();
  const int64_t steps = json_count(json["steps"], "steps", 0);
  const nlohmann::json& param_steps = json["param_steps"];
  TETHER_CHECK(param_steps.is_object(), "optimizer state: 'param_steps' must be an object, got ", param_steps.dump());

  std::map<std::string, std::pair<size_t, size_t>> index;  // parameter name -> (group, position)
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].names.size(); ++i) index[groups_[g].names[i]] = {g, i};

  std::vector<std::vector<ParamState>> state(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) state[g].resize(groups_[g].params.size());
  for (const auto& [pname, value] : param_steps.items()) {
    auto it = index.find(pname);
    TETHER_CHECK(it != index.end(), "optimizer state: 'param_steps' names unknown parameter '", pname, "'");
    state[it->second.first][it->second.second].step = json_count(value, "param_steps." + pname, 1);
  }

  const std::vector<std::string> buffers = buffer_names();
  std::vector<std::vector<std::vector<Tensor>>> found(groups_.size());  // [g][i][buffer]
  for (size_t g = 0; g < groups_.size(); ++g) found[g].assign(groups_[g].params.size(), std::vector<Tensor>(buffers.size()));
  for (const auto& [key, tensor] : tensors) {
    // "<param>.<buffer>": parameter names hold dots, so match the buffer as a suffix.
    size_t b = 0;
    while (b < buffers.size() &&
           !(key.size() > buffers[b].size() + 1 && key.ends_with("." + buffers[b])))
      ++b;
    TETHER_CHECK(b < buffers.size(), "optimizer state: unexpected tensor '", key, "' (", name(),
                 " keeps no such buffer)");
    const std::string pname = key.substr(0, key.size() - buffers[b].size() - 1);
    auto it = index.find(pname);
    TETHER_CHECK(it != index.end(), "optimizer state: tensor '", key, "' names unknown parameter '", pname, "'");
    const auto [g, i] = it->second;
    const Tensor& p = groups_[g].params[i];
    TETHER_CHECK(tensor.defined() && tensor.shape() == p.shape(), "optimizer state: tensor '", key, "' has shape ",
                 tensor.defined() ? shape_str(tensor.shape()) : "(undefined)", ", the parameter ", shape_str(p.shape()));
    TETHER_CHECK(is_floating(tensor.dtype()), "optimizer state: tensor '", key, "' is ", dtype_name(tensor.dtype()),
                 ", expected a floating tensor");
    found[g][i][b] = tensor;
  }
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const std::string& pname = groups_[g].names[i];
      const bool updated = state[g][i].step > 0;
      for (size_t b = 0; b < buffers.size(); ++b) {
        const std::string key = pname + "." + buffers[b];
        TETHER_CHECK(!updated || found[g][i][b].defined(), "optimizer state: missing tensor '", key, "' (",
                     pname, " has a step count)");
        TETHER_CHECK(updated || !found[g][i][b].defined(), "optimizer state: tensor '", key,
                     "' but no step count for '", pname, "' in 'param_steps'");
      }
    }
  // Copies in the parameter's dtype (never aliases the caller's tensors: updates are in place).
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      if (state[g][i].step == 0) continue;
      const Tensor& p = groups_[g].params[i];
      for (const Tensor& t : found[g][i]) {
        Tensor copy = Tensor::empty(p.shape(), p.dtype(), p.device());
        copy.copy_(t);
        state[g][i].buffers.push_back(copy);
      }
    }

  // 2. Commit (nothing below throws).
  state_ = std::move(state);
  base_lr_ = base_lr;
  steps_ = steps;
}

}  // namespace tether::optim
