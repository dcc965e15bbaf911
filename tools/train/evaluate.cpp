#include "tools/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "autograd/grad_mode.h"

namespace tether::train {

Metrics::Metrics(int64_t num_classes) : k_(num_classes), class_total_(num_classes), class_correct_(num_classes) {}

void Metrics::add(const Tensor& logits, const Tensor& labels, int views, std::vector<std::vector<double>>* probs) {
  const int64_t n = labels.numel();
  TETHER_CHECK(logits.dim() == 2 && logits.size(0) == n * views && logits.size(1) == k_, "evaluation: logits ",
               logits.str(), " do not match ", n, " samples x ", views, " views x ", k_, " classes");
  const std::vector<float> z = logits.to(DType::f32).to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  if (probs) probs->assign(n, std::vector<double>(k_));
  std::vector<double> p(k_), view_p(k_);
  for (int64_t i = 0; i < n; ++i) {
    std::fill(p.begin(), p.end(), 0.0);
    for (int v = 0; v < views; ++v) {  // softmax of each view (max-shifted), averaged
      const float* row = z.data() + (i * views + v) * k_;
      const double mx = *std::max_element(row, row + k_);
      double total = 0;
      for (int64_t c = 0; c < k_; ++c) total += view_p[c] = std::exp(row[c] - mx);
      for (int64_t c = 0; c < k_; ++c) p[c] += view_p[c] / total / views;
    }
    const int64_t label = y[i];
    TETHER_CHECK(label >= 0 && label < k_, "evaluation: label ", label, " out of range [0, ", k_, ")");
    // Rank of the true class: how many classes score strictly higher (ties favour the label's
    // lower index, as torch.topk's stable order does for equal values).
    int64_t higher = 0;
    for (int64_t c = 0; c < k_; ++c) higher += p[c] > p[label] || (p[c] == p[label] && c < label);
    correct1_ += higher < 1;
    correct5_ += higher < 5;
    class_total_[label] += 1;
    class_correct_[label] += higher < 1;
    loss_sum_ += -std::log(std::max(p[label], 1e-300));
    double h = 0;
    for (double q : p) h -= q > 0 ? q * std::log2(q) : 0.0;
    entropy_sum_ += h;
    if (probs) (*probs)[i] = p;
  }
  n_ += n;
}

EvalResult Metrics::result() const {
  EvalResult r;
  r.samples = n_;
  if (n_ == 0) return r;
  r.top1 = static_cast<double>(correct1_) / n_;
  r.top5 = static_cast<double>(correct5_) / n_;
  r.loss = loss_sum_ / n_;
  r.entropy_bits = entropy_sum_ / n_;
  int64_t present = 0;
  for (int64_t c = 0; c < k_; ++c)
    if (class_total_[c] > 0) {
      r.mean_class_accuracy += static_cast<double>(class_correct_[c]) / class_total_[c];
      ++present;
    }
  r.mean_class_accuracy /= std::max<int64_t>(present, 1);
  return r;
}

EvalResult evaluate(models::Model& model, data::Loader& loader,
                    const std::function<void(const data::Batch&, const std::vector<std::vector<double>>&)>& on_batch) {
  model.eval();
  NoGradGuard no_grad;
  const Device device = model.device();
  Metrics metrics(model.num_classes());
  loader.start_epoch(0);
  data::Batch batch;
  std::vector<std::vector<double>> probs;
  while (loader.next(batch)) {
    const Tensor logits = model(batch.images.to(device));
    metrics.add(logits, batch.labels, batch.views, on_batch ? &probs : nullptr);
    if (on_batch) on_batch(batch, probs);
  }
  return metrics.result();
}

std::string format_eval(const EvalResult& r) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "top1 %.2f%%  top5 %.2f%%  mean-class %.2f%%  loss %.4f  entropy %.3f bits  (%lld images)",
                100 * r.top1, 100 * r.top5, 100 * r.mean_class_accuracy, r.loss, r.entropy_bits,
                static_cast<long long>(r.samples));
  return buf;
}

}  // namespace tether::train
