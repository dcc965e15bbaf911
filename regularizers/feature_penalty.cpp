#include "regularizers/feature_penalty.h"

#include "regularizers/attention.h"

namespace tether::reg {

bool is_feature_penalty(const std::string& reg) { return reg == "fnp" || reg == "kd" || reg == "delta"; }

FeaturePenalty::FeaturePenalty(const FeatureOptions& opts, models::Model& model)
    : opts_(opts), model_(model), store_(std::make_shared<nn::TapStore>()) {
  TETHER_CHECK(is_feature_penalty(opts.reg), "feature penalty: --reg ", opts.reg, " is not fnp, kd or delta");
  TETHER_CHECK(opts.reg == "delta" || opts.attention.empty(), "--attention is only read by --reg delta, not '",
               opts.reg, "'");
  if (opts.reg == "fnp") {
    model.set_taps({}, store_, model.head_name());  // rep: the input of the head (SPEC 2)
    return;
  }
  TETHER_CHECK(opts.reg != "delta" || !opts.attention.empty(),
               "--reg delta needs --attention FILE (the channel attention of `tether attention`, SPEC 5)");
  taps_ = opts.taps.empty() ? model.default_taps() : opts.taps;
  source_ = std::make_unique<SourceNetwork>(model, taps_);  // checks the tap names
  if (opts.reg == "delta") {
    attention_ = load_attention(opts.attention, source_->channel_counts());
    const Device device = model.parameters().front().device();
    for (auto& [tap, a] : attention_) a = a.to(device);  // where the features are
  }
  model.set_taps(taps_, store_, model.head_name());  // rep too: PtR reads it (rep())
}

Tensor FeaturePenalty::rep() const {
  auto it = store_->find("rep");
  TETHER_CHECK(it != store_->end(), "feature penalty: no rep recorded (read it after the model's forward)");
  return it->second;
}

FeaturePenalty::~FeaturePenalty() { model_.set_taps({}, nullptr); }

Terms FeaturePenalty::terms(const Tensor& images, double scale) {
  Tensor total;
  int64_t batch = 0;
  if (opts_.reg == "fnp") {
    auto it = store_->find("rep");
    TETHER_CHECK(it != store_->end(), "fnp: no rep recorded (call terms() after the model's forward)");
    batch = it->second.shape()[0];
    total = squared_norm(it->second);
  } else {
    const nn::TapStore source = source_->features(images);
    for (const std::string& tap : taps_) {
      auto it = store_->find(tap);
      TETHER_CHECK(it != store_->end(), opts_.reg, ": tap '", tap, "' recorded nothing (call terms() after the model's forward)");
      const Tensor& student = it->second;
      const Tensor& teacher = source.at(tap);
      TETHER_CHECK(student.shape() == teacher.shape(), opts_.reg, ": tap '", tap, "' has shape ",
                   shape_str(student.shape()), " in the model but ", shape_str(teacher.shape()), " in the source network");
      batch = student.shape()[0];
      const int64_t hw = student.numel() / (student.shape()[0] * student.shape()[1]);  // H·W (1 for [B, C])
      auto a = attention_.find(tap);
      Tensor d = channel_squared_distance(student, teacher, a == attention_.end() ? Tensor() : a->second);
      d = d * (1.0 / static_cast<double>(hw));
      total = total.defined() ? total + d : d;
    }
  }
  store_->clear();
  return {{"omega.features", total * (0.5 * opts_.alpha * scale / static_cast<double>(batch))}};
}

std::unique_ptr<FeaturePenalty> make_feature_penalty(const FeatureOptions& opts, models::Model& model) {
  if (!is_feature_penalty(opts.reg) || opts.alpha == 0) return nullptr;
  return std::make_unique<FeaturePenalty>(opts, model);
}

}  // namespace tether::reg
