#include "regularizers/source_network.h"

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "models/registry.h"

namespace tether::reg {

void check_tap_names(const models::Model& model, const std::vector<std::string>& taps) {
  TETHER_CHECK(!taps.empty(), "--taps: no tap names given");
  const auto modules = model.named_modules();
  std::string defaults;
  for (const auto& t : model.default_taps()) defaults += (defaults.empty() ? "" : ",") + t;
  for (const std::string& tap : taps) {
    bool found = false;
    for (const auto& [name, m] : modules) found = found || (!name.empty() && name == tap);
    TETHER_CHECK(found, "--taps: model ", model.name, " has no module named '", tap, "' (its default taps: ", defaults,
                 ")");
  }
}

SourceNetwork::SourceNetwork(const models::Model& model, const std::vector<std::string>& taps)
    : store_(std::make_shared<nn::TapStore>()) {
  check_tap_names(model, taps);
  {
    // The copy's own init draws from the default generator: give the draws back, so a run's
    // dropout and shuffling do not depend on whether a source network exists.
    Generator& g = default_generator();
    const uint64_t seed = g.seed(), offset = g.offset();
    net_ = models::create_model(model.name, {model.num_classes()});
    g.set_state(seed, offset);
  }
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) state.emplace(name, t.detach());
  Device device = Device::cpu();
  for (const auto& [name, t] : state) device = t.device();
  net_->to(device);
  net_->load_state_dict(state, /*strict=*/true);  // copies: later steps of `model` leave it alone
  net_->freeze("");                               // no gradients, eval mode for good
  net_->set_taps(taps, store_);
}

nn::TapStore SourceNetwork::features(const Tensor& images) {
  NoGradGuard no_grad;
  store_->clear();
  (*net_)(images);
  nn::TapStore out = std::move(*store_);
  store_->clear();
  return out;
}

std::map<std::string, int64_t> SourceNetwork::channel_counts() {
  Device device = Device::cpu();
  for (const auto& [name, t] : net_->named_parameters()) device = t.device();
  const nn::TapStore probe = features(Tensor::zeros({1, 3, 32, 32}, DType::f32, device));
  std::map<std::string, int64_t> out;
  for (const auto& [name, t] : probe) out[name] = t.dim() >= 2 ? t.shape()[1] : 1;
  return out;
}

}  // namespace tether::reg
