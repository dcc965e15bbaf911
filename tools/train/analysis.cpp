#include "tools/train/analysis.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "models/weights.h"

namespace tether::train {

// ---- R² -----------------------------------------------------------------------------------

ChannelR2::ChannelR2(int64_t channels) : sums_(static_cast<size_t>(channels)) {
  TETHER_CHECK(channels > 0, "R²: the number of channels must be positive, got ", channels);
}

template <typename T>
void ChannelR2::add_values(const std::vector<T>& x, const std::vector<T>& y, int64_t batch, int64_t positions) {
  const int64_t c_count = channels();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < c_count; ++c) {
    Sums& s = sums_[static_cast<size_t>(c)];
    if (!s.started && batch > 0) {
      s.kx = x[static_cast<size_t>(c * positions)];
      s.ky = y[static_cast<size_t>(c * positions)];
      s.started = true;
    }
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int64_t i = 0; i < batch; ++i) {
      const size_t base = static_cast<size_t>((i * c_count + c) * positions);
      for (int64_t p = 0; p < positions; ++p) {
        const double a = static_cast<double>(x[base + p]) - s.kx, b = static_cast<double>(y[base + p]) - s.ky;
        sx += a;
        sy += b;
        sxx += a * a;
        syy += b * b;
        sxy += a * b;
      }
    }
    s.n += static_cast<double>(batch * positions);
    s.sx += sx;
    s.sy += sy;
    s.sxx += sxx;
    s.syy += syy;
    s.sxy += sxy;
  }
}

void ChannelR2::add(const Tensor& x, const Tensor& y) {
  TETHER_CHECK(x.shape() == y.shape(), "R²: pretrained activations ", x.str(), " and fine-tuned ", y.str(),
               " differ in shape");
  TETHER_CHECK((x.dim() == 2 || x.dim() == 4) && x.size(1) == channels(), "R²: expected [N, ", channels(),
               "] or [N, ", channels(), ", H, W] activations, got ", x.str());
  const int64_t positions = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  if (x.dtype() == DType::f64) add_values(x.to_vector<double>(), y.to_vector<double>(), x.size(0), positions);
  else add_values(x.to_vector<float>(), y.to_vector<float>(), x.size(0), positions);
}

std::vector<double> ChannelR2::r2() const {
  std::vector<double> out;
  out.reserve(sums_.size());
  for (const Sums& s : sums_) {
    if (s.n == 0) {
      out.push_back(0);
      continue;
    }
    const double sxx = std::max(0.0, s.sxx - s.sx * s.sx / s.n), syy = std::max(0.0, s.syy - s.sy * s.sy / s.n);
    const double sxy = s.sxy - s.sx * s.sy / s.n;
    if (syy == 0) out.push_back(1);       // y constant: the intercept fits it exactly
    else if (sxx == 0) out.push_back(0);  // x constant, y not: nothing explained
    else out.push_back(std::clamp(sxy * sxy / (sxx * syy), 0.0, 1.0));
  }
  return out;
}

Distribution describe(std::vector<double> v) {
  Distribution d;
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  const auto quantile = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
  };
  d.min = v.front();
  d.max = v.back();
  d.q1 = quantile(0.25);
  d.median = quantile(0.5);
  d.q3 = quantile(0.75);
  double total = 0;
  for (double x : v) total += x;
  d.mean = total / static_cast<double>(v.size());
  return d;
}

FeatureR2::FeatureR2(models::Model& source, models::Model& tuned, std::vector<std::string> taps)
    : source_(source),
      tuned_(tuned),
      taps_(std::move(taps)),
      source_store_(std::make_shared<nn::TapStore>()),
      tuned_store_(std::make_shared<nn::TapStore>()),
      acc_(taps_.size()) {
  TETHER_CHECK(!taps_.empty(), "R²: no taps");
  TETHER_CHECK(&source_ != &tuned_, "R²: the pretrained and fine-tuned models must be two objects");
  source_.set_taps(taps_, source_store_);  // throws naming an unknown tap
  tuned_.set_taps(taps_, tuned_store_);
}

FeatureR2::~FeatureR2() {
  source_.set_taps({}, nullptr);
  tuned_.set_taps({}, nullptr);
}

void FeatureR2::add(const Tensor& images) {
  NoGradGuard no_grad;
  source_.eval();
  tuned_.eval();
  source_store_->clear();
  tuned_store_->clear();
  source_(images.to(source_.device()));
  tuned_(images.to(tuned_.device()));
  for (size_t j = 0; j < taps_.size(); ++j) {
    const auto xs = source_store_->find(taps_[j]), ys = tuned_store_->find(taps_[j]);
    TETHER_CHECK(xs != source_store_->end() && ys != tuned_store_->end(), "R²: tap '", taps_[j],
                 "' produced no output during the forward");
    if (!acc_[j]) {
      TETHER_CHECK(xs->second.dim() >= 2, "R²: tap '", taps_[j], "' output ", xs->second.str(), " has no channels");
      acc_[j] = std::make_unique<ChannelR2>(xs->second.size(1));
    }
    acc_[j]->add(xs->second, ys->second);
  }
  source_store_->clear();
  tuned_store_->clear();
}

std::vector<TapR2> FeatureR2::result() const {
  std::vector<TapR2> out;
  for (size_t j = 0; j < taps_.size(); ++j) {
    TapR2 t{taps_[j], {}, 0};
    if (acc_[j]) {
      t.r2 = acc_[j]->r2();
      t.observations = acc_[j]->count();
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<TapR2> feature_r2(models::Model& source, models::Model& tuned, const std::vector<std::string>& taps,
                              data::Loader& loader) {
  FeatureR2 acc(source, tuned, taps);
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) acc.add(batch.images);
  return acc.result();
}

void write_r2_csv(const std::string& path, const std::vector<TapR2>& rows) {
  std::ofstream csv(path);
  TETHER_CHECK(csv.good(), "--r2: cannot write '", path, "'");
  csv << "tap,channel,r2\n" << std::setprecision(9);
  for (const TapR2& t : rows)
    for (size_t c = 0; c < t.r2.size(); ++c) csv << t.tap << "," << c << "," << t.r2[c] << "\n";
  TETHER_CHECK(csv.good(), "--r2: error writing '", path, "'");
}

// ---- prediction statistics -----------------------------------------------------------------

PredictionStatsAccumulator::PredictionStatsAccumulator(int64_t num_classes)
    : k_(num_classes),
      row_sums_(static_cast<size_t>(num_classes), std::vector<double>(static_cast<size_t>(num_classes))),
      row_count_(static_cast<size_t>(num_classes)) {
  TETHER_CHECK(num_classes > 0, "prediction statistics: the number of classes must be positive, got ", num_classes);
}

void PredictionStatsAccumulator::add(const std::vector<std::vector<double>>& probs,
                                     const std::vector<int64_t>& labels) {
  TETHER_CHECK(probs.size() == labels.size(), "prediction statistics: ", probs.size(), " probability rows for ",
               labels.size(), " labels");
  for (size_t i = 0; i < probs.size(); ++i) {
    const int64_t y = labels[i];
    TETHER_CHECK(y >= 0 && y < k_, "prediction statistics: label ", y, " out of range [0, ", k_, ")");
    TETHER_CHECK(static_cast<int64_t>(probs[i].size()) == k_, "prediction statistics: ", probs[i].size(),
                 " probabilities for ", k_, " classes");
    double h = 0;
    for (size_t l = 0; l < probs[i].size(); ++l) {
      const double p = probs[i][l];
      row_sums_[static_cast<size_t>(y)][l] += p;
      h -= p > 0 ? p * std::log2(p) : 0.0;
    }
    row_count_[static_cast<size_t>(y)] += 1;
    entropy_sum_ += h;
    ++n_;
  }
}

PredictionStats PredictionStatsAccumulator::result() const {
  PredictionStats r;
  r.samples = n_;
  r.confusion.assign(static_cast<size_t>(k_), std::vector<double>(static_cast<size_t>(k_)));
  for (size_t k = 0; k < r.confusion.size(); ++k) {
    if (row_count_[k] == 0) continue;
    ++r.classes_present;
    for (size_t l = 0; l < r.confusion.size(); ++l) {
      r.confusion[k][l] = row_sums_[k][l] / static_cast<double>(row_count_[k]);
      (k == l ? r.diagonal_sum : r.off_diagonal_sum) += r.confusion[k][l];
    }
  }
  r.entropy_bits = n_ > 0 ? entropy_sum_ / static_cast<double>(n_) : 0.0;
  return r;
}

// ---- models ----------------------------------------------------------------------------------

models::ModelPtr load_model_for_file(const std::string& name, const std::string& weights, int64_t num_classes,
                                     bool* head_loaded) {
  const auto tensors = safetensors::load(weights).tensors;
  models::ModelPtr model = models::create_model(name, {num_classes > 0 ? num_classes : 1000});
  if (num_classes <= 0) {
    const auto mapped = models::to_torchvision_names(tensors, *model);
    const auto head = mapped.find(model->head_name() + ".weight");
    if (head != mapped.end() && head->second.dim() == 2 && head->second.size(0) != model->num_classes())
      model->reset_head(head->second.size(0));
  }
  const auto report = models::load_weights(*model, tensors, weights);
  if (head_loaded) *head_loaded = report.head_loaded;
  return model;
}

}  // namespace tether::train
