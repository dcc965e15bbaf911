// Evaluation: top-1, top-5, mean per-class accuracy, loss and average predictive entropy,
// on centre crops or ten crops (softmax averaged over a sample's views).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/loader.h"
#include "models/model.h"

namespace tether::train {

struct EvalResult {
  int64_t samples = 0;
  double top1 = 0, top5 = 0;        // fractions in [0, 1]
  double mean_class_accuracy = 0;   // top-1 averaged over the classes present
  double loss = 0;                  // mean −log p̄(y), p̄ = softmax averaged over views
  double entropy_bits = 0;          // mean −Σ p̄ log2 p̄
};

// Accumulates predictions batch by batch (the testable part of evaluation).
class Metrics {
 public:
  explicit Metrics(int64_t num_classes);
  // logits [n * views, K] (sample-major), labels [n]. Also returns p̄ for a predictions CSV.
  void add(const Tensor& logits, const Tensor& labels, int views, std::vector<std::vector<double>>* probs = nullptr);
  EvalResult result() const;

 private:
  int64_t k_;
  int64_t n_ = 0, correct1_ = 0, correct5_ = 0;
  double loss_sum_ = 0, entropy_sum_ = 0;
  std::vector<int64_t> class_total_, class_correct_;
};

// Runs the model in eval mode under no-grad over the loader's epoch 0 and leaves it in eval
// mode (the trainer restores its own BN mode). `on_batch` (optional) sees each batch's indices and p̄.
EvalResult evaluate(models::Model& model, data::Loader& loader,
                    const std::function<void(const data::Batch&, const std::vector<std::vector<double>>&)>& on_batch = {});

std::string format_eval(const EvalResult& r);  // "top1 81.20%  top5 ...  loss 0.612  entropy 0.88 bits"

}  // namespace tether::train
