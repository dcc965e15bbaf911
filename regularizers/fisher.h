// The diagonal Fisher information of SPEC 4, the F_j that `--reg l2sp-fisher` and
// `glsp-fisher` weigh the distance to w0 with:
//
//   F_j = (1/N) Σ_{i≤N} Σ_k q_k(x_i) (∂/∂w_j log p_k(x_i; w0))²
//
// computed with the model in eval mode (BN running statistics) from PER-SAMPLE gradients: one
// image per forward, one backward per class k with q_k ≠ 0, never the square of a batch
// gradient. The mode chooses q:
//   exact      q = p(·|x_i): K backward passes from one retained forward, each scaled by p_k;
//   sampled    q = one-hot(k), k ~ p(·|x_i) drawn from the accumulator's seeded Generator;
//   empirical  q = one-hot(true label).
// Since ∂ log p_k / ∂logits = e_k − p, each backward starts at the logits with that vector
// (no softmax node in the graph). Squared gradients accumulate in place into f64 buffers.
//
// This file is the computation only; `tether fisher` (tools/cmd_fisher.cpp) adds the data,
// the seeded choice of the N images, the file and the per-layer summary.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "layers/module.h"

namespace tether::reg {

enum class FisherMode { exact, sampled, empirical };
// "exact" | "sampled" | "empirical"; anything else throws naming --mode.
FisherMode parse_fisher_mode(const std::string& name);
std::string fisher_mode_name(FisherMode mode);

// Accumulates F over samples added one at a time. The model (a classifier returning logits
// [1, K]) is put in eval mode and every parameter made to require grad while the accumulator
// lives; both are restored by the destructor. Parameters' .grad is never touched.
class FisherAccumulator {
 public:
  FisherAccumulator(nn::Module& model, FisherMode mode, uint64_t seed = 0);
  ~FisherAccumulator();
  FisherAccumulator(const FisherAccumulator&) = delete;
  FisherAccumulator& operator=(const FisherAccumulator&) = delete;

  // One sample: image [C, H, W] or [1, C, H, W]; label is used by `empirical` only (it must
  // then be in [0, K)).
  void add(const Tensor& image, int64_t label);
  int64_t samples() const { return samples_; }
  int64_t backward_passes() const { return backward_passes_; }
  // F so far: one f32 tensor per parameter (named and shaped as the model's), divided by N.
  std::map<std::string, Tensor> result() const;

 private:
  nn::Module& model_;
  FisherMode mode_;
  Generator gen_;
  nn::NamedTensors params_;
  std::vector<std::vector<double>> sums_;
  std::vector<bool> had_requires_grad_;
  bool was_training_;
  int64_t samples_ = 0, backward_passes_ = 0;
};

// F over the samples of a batch: images [N, C, H, W], labels of size N (used by `empirical`).
std::map<std::string, Tensor> compute_fisher(nn::Module& model, const Tensor& images,
                                             const std::vector<int64_t>& labels, FisherMode mode,
                                             uint64_t seed = 0);

// The per-layer summary (the paper's Figure 5): per tensor, in the model's parameter order.
struct FisherLayerSummary {
  std::string name;
  int64_t numel = 0;
  double min = 0, median = 0, max = 0;  // median: mean of the two middle values when numel is even
};
std::vector<FisherLayerSummary> summarize_fisher(const nn::NamedTensors& params,
                                                 const std::map<std::string, Tensor>& fisher);
// name,numel,min,median,max with a header row; throws naming the path when it cannot write.
void write_fisher_csv(const std::string& path, const std::vector<FisherLayerSummary>& rows);

}  // namespace tether::reg
