// Analyses of a fine-tuned model (`tether analyze`, issue 7):
//
// - Feature R² (the L2-SP paper's Figure 4): for each tap layer j and channel c, the fine-tuned
//   activation y is regressed on the pretrained activation x by least squares with an intercept
//   (y ≈ a·x + b) over every image of a data set and every spatial position (H·W per image;
//   a 2-D tap [N, C] counts one position). R² = 1 − SS_res/SS_tot = Sxy² / (Sxx·Syy), the squared
//   Pearson correlation, with Sxx = Σ(x − x̄)², Syy = Σ(y − ȳ)², Sxy = Σ(x − x̄)(y − ȳ).
//   One pass, sums in double (n, Σx, Σy, Σx², Σy², Σxy per channel, each taken about the
//   channel's first value, which is exact for a constant channel and avoids most cancellation);
//   no activation is kept beyond its batch. Degenerate cases (a sum of squares exactly 0):
//     y constant (Syy = 0, whatever x): the intercept alone fits y exactly → R² = 1;
//     x constant, y not (Sxx = 0 < Syy): the regression is the mean of y → R² = 0.
//   So R² = 1 exactly when y is an affine function of x (a dead channel that stays dead counts
//   as unchanged), and R² is clamped to [0, 1] against rounding.
//
// - Prediction statistics (the PtR paper) of one model on an evaluation set, from p̄ (softmax,
//   averaged over views as in `tether eval`): the probability-confusion matrix
//   P[k][l] = mean over the images of true class k of p̄_l (rows = true class, each present row
//   sums to 1, rows of absent classes are 0); diagonal_sum = Σ_k P[k][k] ∈ [0, K'] and
//   off_diagonal_sum = Σ_{k≠l} P[k][l] = K' − diagonal_sum, with K' the number of classes present
//   (K' = K when every class has an image); entropy_bits = mean over all images of −Σ_l p̄_l log2 p̄_l
//   ∈ [0, log2 K].
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/loader.h"
#include "layers/module.h"
#include "models/model.h"

namespace tether::train {

// Per-channel simple linear regression of y on x, accumulated batch by batch.
class ChannelR2 {
 public:
  explicit ChannelR2(int64_t channels);
  // x (pretrained), y (fine-tuned): the same shape [N, C] or [N, C, H, W] (any dtype, any device).
  void add(const Tensor& x, const Tensor& y);
  std::vector<double> r2() const;  // one per channel, in [0, 1]
  int64_t channels() const { return static_cast<int64_t>(sums_.size()); }
  int64_t count() const { return sums_.empty() ? 0 : sums_[0].n; }  // observations per channel

 private:
  struct Sums {
    bool started = false;
    double kx = 0, ky = 0;  // shifts: the channel's first x and y
    double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  };
  template <typename T>
  void add_values(const std::vector<T>& x, const std::vector<T>& y, int64_t batch, int64_t positions);
  std::vector<Sums> sums_;
};

struct TapR2 {
  std::string tap;
  std::vector<double> r2;  // per channel
  int64_t observations = 0;  // images × positions, per channel
};

// Min, quartiles (linear interpolation, numpy's default), median, max and mean of values.
struct Distribution {
  double min = 0, q1 = 0, median = 0, q3 = 0, max = 0, mean = 0;
};
Distribution describe(std::vector<double> values);

// Runs the pretrained and the fine-tuned models (same architecture; heads may differ) in eval
// mode under no-grad on the same batches and accumulates ChannelR2 for each tap. The taps are
// set on both models for the object's lifetime and cleared by the destructor; `source` and
// `tuned` must be two model objects (taps on one object hold one store).
class FeatureR2 {
 public:
  FeatureR2(models::Model& source, models::Model& tuned, std::vector<std::string> taps);
  ~FeatureR2();
  FeatureR2(const FeatureR2&) = delete;
  FeatureR2& operator=(const FeatureR2&) = delete;
  void add(const Tensor& images);
  std::vector<TapR2> result() const;  // in the order of `taps`

 private:
  models::Model &source_, &tuned_;
  std::vector<std::string> taps_;
  std::shared_ptr<nn::TapStore> source_store_, tuned_store_;
  std::vector<std::unique_ptr<ChannelR2>> acc_;  // per tap, created on the first batch
};

// FeatureR2 over the loader's epoch 0 (every image once).
std::vector<TapR2> feature_r2(models::Model& source, models::Model& tuned, const std::vector<std::string>& taps,
                              data::Loader& loader);
// tap,channel,r2 per row (r2 with 9 significant digits).
void write_r2_csv(const std::string& path, const std::vector<TapR2>& rows);

struct PredictionStats {
  int64_t samples = 0, classes_present = 0;
  std::vector<std::vector<double>> confusion;  // K×K, rows = true class (see the header comment)
  double diagonal_sum = 0, off_diagonal_sum = 0, entropy_bits = 0;
};

class PredictionStatsAccumulator {
 public:
  explicit PredictionStatsAccumulator(int64_t num_classes);
  // probs[i]: the K probabilities of image i (summing to 1), labels[i] its true class.
  void add(const std::vector<std::vector<double>>& probs, const std::vector<int64_t>& labels);
  PredictionStats result() const;

 private:
  int64_t k_;
  std::vector<std::vector<double>> row_sums_;
  std::vector<int64_t> row_count_;
  double entropy_sum_ = 0;
  int64_t n_ = 0;
};

// A model of architecture `name` whose head has the shape of the head in `weights` (or
// `num_classes` classes when > 0, or 1000 when the file has none), with the file loaded into it
// (models::load_weights: the head only when its shape matches). `head_loaded` reports that.
models::ModelPtr load_model_for_file(const std::string& name, const std::string& weights, int64_t num_classes,
                                     bool* head_loaded = nullptr);

}  // namespace tether::train
