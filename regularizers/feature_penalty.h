// SPEC 2's feature-space rows and SPEC 5's taps: fnp, kd and delta. Their feature part needs
// the forward pass, so it is a separate object from the weight-space Penalty: after the model's
// forward on a batch, terms(images, scale) returns "omega.features" as a differentiable scalar
// (built from autograd ops, so its gradient flows back through the model). Their S̄ part
// β/2 Σ_S̄ ‖w‖² is the weight-space Penalty's "omega.head" (make_penalty).
//   fnp    α/2 · (1/B) Σ_i ‖rep_i‖²
//   kd     α/2 · (1/B) Σ_i Σ_taps Σ_c ‖F_c(w,x_i) − F_c(w0,x_i)‖² / (H·W)
//   delta  as kd, each channel term multiplied by its attention a_c (--attention FILE)
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "regularizers/penalty.h"
#include "regularizers/source_network.h"

namespace tether::reg {

struct FeatureOptions {
  std::string reg = "none";       // fnp | kd | delta; anything else: no feature penalty
  double alpha = 0;               // --alpha
  std::vector<std::string> taps;  // --taps (kd, delta); empty: the model's default_taps()
  std::string attention;          // --attention FILE (delta): the output of `tether attention`
};

bool is_feature_penalty(const std::string& reg);  // fnp, kd, delta

class FeaturePenalty {
 public:
  // Turns on the taps of `model` (kd, delta: the taps; fnp: rep) and, for kd and delta, builds
  // the source network from `model`'s current state: construct it while the model is at w0.
  // delta loads the attention file and checks it against the taps and their channel counts.
  FeaturePenalty(const FeatureOptions& opts, models::Model& model);
  ~FeaturePenalty();  // turns the taps off again
  FeaturePenalty(const FeaturePenalty&) = delete;
  FeaturePenalty& operator=(const FeaturePenalty&) = delete;

  // Call after the model's forward on `images`: the feature part times `scale`, as
  // {"omega.features", value}. Runs the source network on the same images (kd, delta); the
  // source features and the recorded taps are released before it returns (the graph keeps
  // what the backward needs).
  Terms terms(const Tensor& images, double scale);

  const std::vector<std::string>& taps() const { return taps_; }
  // The head's input of the last forward (the model's one set of taps also records it, for PtR);
  // valid until terms() releases the recorded taps.
  Tensor rep() const;
  const std::map<std::string, Tensor>& attention() const { return attention_; }  // delta only

 private:
  FeatureOptions opts_;
  models::Model& model_;
  std::vector<std::string> taps_;
  std::shared_ptr<nn::TapStore> store_;
  std::unique_ptr<SourceNetwork> source_;
  std::map<std::string, Tensor> attention_;
};

// nullptr unless opts.reg is fnp, kd or delta with alpha > 0.
std::unique_ptr<FeaturePenalty> make_feature_penalty(const FeatureOptions& opts, models::Model& model);

}  // namespace tether::reg
