// SPEC 4: the diagonal Fisher information from per-sample gradients (see fisher.h).
#include "regularizers/fisher.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace tether::reg {

FisherMode parse_fisher_mode(const std::string& name) {
  if (name == "exact") return FisherMode::exact;
  if (name == "sampled") return FisherMode::sampled;
  if (name == "empirical") return FisherMode::empirical;
  throw Error("--mode '" + name + "': unknown Fisher mode (exact, sampled or empirical)");
}

std::string fisher_mode_name(FisherMode mode) {
  switch (mode) {
    case FisherMode::exact: return "exact";
    case FisherMode::sampled: return "sampled";
    case FisherMode::empirical: return "empirical";
  }
  return "?";
}

FisherAccumulator::FisherAccumulator(nn::Module& model, FisherMode mode, uint64_t seed)
    : model_(model), mode_(mode), gen_(seed), params_(model.named_parameters()), was_training_(model.is_training()) {
  TETHER_CHECK(!params_.empty(), "Fisher information of a model without parameters");
  model_.eval();
  for (auto& [name, p] : params_) {
    had_requires_grad_.push_back(p.requires_grad());
    p.set_requires_grad(true);
    sums_.emplace_back(static_cast<size_t>(p.numel()), 0.0);
  }
}

FisherAccumulator::~FisherAccumulator() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].second.set_requires_grad(had_requires_grad_[i]);
  model_.train(was_training_);
}

namespace {

// sum[j] += weight * g[j]² over one gradient tensor (any float dtype, any device).
void accumulate_squares(std::vector<double>& sum, const Tensor& grad, double weight) {
  const int64_t n = static_cast<int64_t>(sum.size());
  TETHER_CHECK(grad.numel() == n, "Fisher: gradient of ", grad.numel(), " elements for a parameter of ", n);
  double* s = sum.data();
  Tensor g = grad.device().is_cpu() && grad.is_contiguous() ? grad : grad.to(Device::cpu()).clone();
  if (g.dtype() == DType::f32) {
    const float* p = g.data<float>();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t j = 0; j < n; ++j) s[j] += weight * static_cast<double>(p[j]) * static_cast<double>(p[j]);
  } else {
    const std::vector<double> v = g.to_vector<double>();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t j = 0; j < n; ++j) s[j] += weight * v[j] * v[j];
  }
}

}  // namespace

void FisherAccumulator::add(const Tensor& image, int64_t label) {
  TETHER_CHECK(image.dim() == 3 || (image.dim() == 4 && image.shape()[0] == 1),
               "Fisher: one image [C, H, W] or [1, C, H, W] per sample, got ", shape_str(image.shape()));
  const Tensor x = image.dim() == 3 ? reshape(contiguous(image), {1, image.shape()[0], image.shape()[1], image.shape()[2]})
                                    : image;
  // The forward must record the graph even when called inside a NoGradGuard.
  const bool grad_was_enabled = GradMode::enabled();
  GradMode::set_enabled(true);
  Tensor logits;
  try {
    logits = model_(x);
  } catch (...) {
    GradMode::set_enabled(grad_was_enabled);
    throw;
  }
  GradMode::set_enabled(grad_was_enabled);
  TETHER_CHECK(logits.dim() == 2 && logits.shape()[0] == 1, "Fisher: the model must return logits [1, K], got ",
               shape_str(logits.shape()));
  const int64_t k_count = logits.shape()[1];

  // p = softmax(logits) in f64.
  std::vector<double> p = logits.to_vector<double>();
  const double top = *std::max_element(p.begin(), p.end());
  double z = 0;
  for (double& v : p) z += (v = std::exp(v - top));
  for (double& v : p) v /= z;

  // The classes k and their weights q_k.
  std::vector<std::pair<int64_t, double>> terms;
  switch (mode_) {
    case FisherMode::exact:
      for (int64_t k = 0; k < k_count; ++k)
        if (p[k] > 0) terms.emplace_back(k, p[k]);
      break;
    case FisherMode::sampled: {
      const double u = gen_.next_uniform();
      int64_t k = k_count - 1;
      double cumulative = 0;
      for (int64_t c = 0; c < k_count; ++c) {
        cumulative += p[c];
        if (u < cumulative) {
          k = c;
          break;
        }
      }
      terms.emplace_back(k, 1.0);
      break;
    }
    case FisherMode::empirical:
      TETHER_CHECK(label >= 0 && label < k_count, "Fisher (empirical): label ", label, " outside the model's ",
                   k_count, " classes");
      terms.emplace_back(label, 1.0);
      break;
  }

  std::vector<Tensor> inputs;
  inputs.reserve(params_.size());
  for (const auto& [name, t] : params_) inputs.push_back(t);
  for (size_t t = 0; t < terms.size(); ++t) {
    const auto [k, weight] = terms[t];
    // ∂ log p_k / ∂logits = e_k − p.
    std::vector<float> seed(static_cast<size_t>(k_count));
    for (int64_t c = 0; c < k_count; ++c) seed[c] = static_cast<float>((c == k ? 1.0 : 0.0) - p[c]);
    Tensor g_out = Tensor::from_vector(seed, {1, k_count}).to(logits.device());
    if (g_out.dtype() != logits.dtype()) g_out = g_out.to(logits.dtype());
    const bool last = t + 1 == terms.size();
    const std::vector<Tensor> grads = grad({logits}, inputs, {g_out}, /*retain_graph=*/!last, /*allow_unused=*/true);
    for (size_t i = 0; i < params_.size(); ++i)
      if (grads[i].defined()) accumulate_squares(sums_[i], grads[i], weight);
    ++backward_passes_;
  }
  ++samples_;
}

std::map<std::string, Tensor> FisherAccumulator::result() const {
  TETHER_CHECK(samples_ > 0, "Fisher information over zero samples");
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    std::vector<float> f(sums_[i].size());
    for (size_t j = 0; j < f.size(); ++j) f[j] = static_cast<float>(sums_[i][j] / static_cast<double>(samples_));
    out[name] = Tensor::from_vector(f, p.shape());
  }
  return out;
}

std::map<std::string, Tensor> compute_fisher(nn::Module& model, const Tensor& images, const std::vector<int64_t>& labels,
                                             FisherMode mode, uint64_t seed) {
  TETHER_CHECK(images.dim() == 4, "compute_fisher: images [N, C, H, W], got ", shape_str(images.shape()));
  const int64_t n = images.shape()[0];
  TETHER_CHECK(static_cast<int64_t>(labels.size()) == n, "compute_fisher: ", labels.size(), " labels for ", n,
               " images");
  FisherAccumulator acc(model, mode, seed);
  for (int64_t i = 0; i < n; ++i) acc.add(narrow(images, 0, i, 1), labels[i]);
  return acc.result();
}

std::vector<FisherLayerSummary> summarize_fisher(const nn::NamedTensors& params,
                                                 const std::map<std::string, Tensor>& fisher) {
  std::vector<FisherLayerSummary> rows;
  for (const auto& [name, p] : params) {
    auto it = fisher.find(name);
    TETHER_CHECK(it != fisher.end(), "Fisher summary: no tensor for parameter '", name, "'");
    std::vector<double> v = it->second.to_vector<double>();
    FisherLayerSummary r;
    r.name = name;
    r.numel = static_cast<int64_t>(v.size());
    if (!v.empty()) {
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      r.min = *lo, r.max = *hi;
      const size_t mid = v.size() / 2;
      std::nth_element(v.begin(), v.begin() + mid, v.end());
      r.median = v[mid];
      if (v.size() % 2 == 0) r.median = 0.5 * (r.median + *std::max_element(v.begin(), v.begin() + mid));
    }
    rows.push_back(r);
  }
  return rows;
}

void write_fisher_csv(const std::string& path, const std::vector<FisherLayerSummary>& rows) {
  std::ofstream csv(path);
  TETHER_CHECK(csv.good(), "--csv: cannot write '", path, "'");
  csv.precision(9);
  csv << "name,numel,min,median,max\n";
  for (const auto& r : rows) csv << r.name << "," << r.numel << "," << r.min << "," << r.median << "," << r.max << "\n";
  csv.flush();
  TETHER_CHECK(csv.good(), "--csv: error writing '", path, "'");
}

}  // namespace tether::reg
