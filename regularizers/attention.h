// SPEC 5: DELTA's channel attention, behind `tether attention` and loaded by --reg delta.
//   1. train a fresh head on the frozen source backbone (eval mode: BN running statistics, no
//      dropout), SGD lr 0.01 momentum 0.9, no augmentation: representation() then train_head();
//      the backbone is frozen and deterministic, so its rep of each image is computed once and
//      the head is trained on those;
//   2. channel_loss_increase(): in eval mode, for each tap j and channel c, the mean increase of
//      the CE loss when channel c of tap j's output is zeroed: Δ_jc;
//   3. attention_from_increase(): z_jc = (Δ_jc − mean_c Δ_j) / (std_c Δ_j + 1e-12) (std: the
//      unbiased sample std, as torch.std), a_jc = C_j · softmax_c(z_jc / τ);
//   4. save_attention(): one f32 tensor [C] per tap, named by the tap.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"

namespace tether::reg {

// Step 1. The input of the head (SPEC 2's rep) for `images`, the model in eval mode, no graph.
Tensor representation(models::Model& model, const Tensor& images);

struct HeadTrainingOptions {
  int64_t epochs = 10;      // --att-epochs
  int64_t batch_size = 32;  // every batch of a seeded permutation per epoch, the last one possibly smaller
  double lr = 0.01, momentum = 0.9;
  uint64_t seed = 0;
};
// Step 1. Trains model's head (only it) on (reps [N, D], labels [N] i64) with SGD on mean CE.
// Returns the mean CE of the last epoch.
double train_head(models::Model& model, const Tensor& reps, const Tensor& labels, const HeadTrainingOptions& opts);

// Step 2. Δ by tap, [C] each: the mean over the images of `batches` (images, labels) of
// CE(channel c of the tap zeroed) − CE(nothing zeroed), the model in eval mode.
std::map<std::string, std::vector<double>> channel_loss_increase(
    models::Model& model, const std::vector<std::string>& taps, const std::vector<std::pair<Tensor, Tensor>>& batches);

// Step 3. a = C · softmax(z / τ) for one tap's Δ.
std::vector<double> attention_from_increase(const std::vector<double>& delta, double temperature);

// Step 4, and its reader for --reg delta: `channels` maps every tap to its channel count. The
// file must hold exactly those taps, each a 1-D tensor of that many finite values >= 0; any
// mismatch throws one error naming the file, the tap and both counts.
void save_attention(const std::string& path, const std::map<std::string, std::vector<double>>& attention,
                    const std::map<std::string, std::string>& metadata);
std::map<std::string, Tensor> load_attention(const std::string& path, const std::map<std::string, int64_t>& channels);

}  // namespace tether::reg
