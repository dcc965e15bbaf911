#include "regularizers/attention.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "optim/optimizer.h"

namespace tether::reg {

Tensor representation(models::Model& model, const Tensor& images) {
  NoGradGuard no_grad;
  model.eval();
  auto store = std::make_shared<nn::TapStore>();
  model.set_taps({}, store, model.head_name());
  model(images);
  model.set_taps({}, nullptr);
  return store->at("rep");
}

double train_head(models::Model& model, const Tensor& reps, const Tensor& labels, const HeadTrainingOptions& opts) {
  TETHER_CHECK(opts.epochs > 0 && opts.batch_size > 0, "attention: --att-epochs and --batch-size must be positive");
  const int64_t n = reps.shape()[0];
  TETHER_CHECK(n > 0 && labels.numel() == n, "attention: ", n, " representations but ", labels.numel(), " labels");
  nn::ModulePtr head = model.submodule(model.head_name());
  optim::ParamGroup group{"head"};
  for (const auto& [name, p] : head->named_parameters()) {
    group.names.push_back(model.head_name() + "." + name);
    group.params.push_back(p);
  }
  auto sgd = optim::make_sgd({group}, {opts.lr, opts.momentum});
  const auto label_values = labels.to_vector<int64_t>();
  Generator gen(opts.seed ^ 0x415454454eULL);  // the permutation of each epoch
  std::vector<int64_t> order(static_cast<size_t>(n));
  double epoch_loss = 0;
  for (int64_t e = 0; e < opts.epochs; ++e) {
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.next_below(i)]);
    double sum = 0;
    for (int64_t start = 0; start < n; start += opts.batch_size) {
      const int64_t b = std::min(opts.batch_size, n - start);
      std::vector<Tensor> rows;
      std::vector<int64_t> y;
      for (int64_t k = start; k < start + b; ++k) {
        rows.push_back(ops::narrow(reps, 0, order[k], 1));
        y.push_back(label_values[order[k]]);
      }
      const Tensor x = ops::cat(rows, 0);
      const Tensor target = Tensor::from_vector(y, {b}).to(x.device());
      sgd->zero_grad();
      const Tensor loss = cross_entropy((*head)(x), target);
      loss.backward();
      sgd->step();
      sum += loss.item<double>() * static_cast<double>(b);
    }
    epoch_loss = sum / static_cast<double>(n);
  }
  return epoch_loss;
}

std::map<std::string, std::vector<double>> channel_loss_increase(
    models::Model& model, const std::vector<std::string>& taps, const std::vector<std::pair<Tensor, Tensor>>& batches) {
  NoGradGuard no_grad;
  model.eval();
  TETHER_CHECK(!batches.empty(), "attention: no images to measure the channel importance on");
  // Σ over images of the CE loss (a batch's mean times its size), and the channel counts.
  auto store = std::make_shared<nn::TapStore>();
  model.set_taps(taps, store);
  double images = 0, base = 0;
  auto summed_loss = [&](const Tensor& x, const Tensor& y) {
    return cross_entropy(model(x), y).item<double>() * static_cast<double>(x.shape()[0]);
  };
  for (const auto& [x, y] : batches) images += static_cast<double>(x.shape()[0]), base += summed_loss(x, y);
  std::map<std::string, int64_t> channels;
  for (const std::string& tap : taps) {
    const Tensor& t = store->at(tap);
    TETHER_CHECK(t.dim() >= 2, "attention: tap '", tap, "' outputs ", shape_str(t.shape()), ", not [N, C, ...]");
    channels[tap] = t.shape()[1];
  }
  model.set_taps({}, nullptr);

  std::map<std::string, std::vector<double>> out;
  for (const std::string& tap : taps) {
    nn::ModulePtr m = model.submodule(tap);
    int64_t channel = 0;
    m->set_output_hook([&channel](const Tensor& y) {  // zero channel `channel` of the tap's output
      Tensor z = y.clone();
      ops::fill_(ops::select(z, 1, channel), 0.0);
      return z;
    });
    std::vector<double>& delta = out[tap];
    for (channel = 0; channel < channels[tap]; ++channel) {
      double ablated = 0;
      for (const auto& [x, y] : batches) ablated += summed_loss(x, y);
      delta.push_back((ablated - base) / images);
    }
    m->set_output_hook(nullptr);
  }
  return out;
}

std::vector<double> attention_from_increase(const std::vector<double>& delta, double temperature) {
  TETHER_CHECK(temperature > 0 && std::isfinite(temperature), "--att-temperature must be > 0 and finite, got ",
               temperature);
  const size_t c = delta.size();
  if (c == 0) return {};
  double mean = 0;
  for (double d : delta) mean += d;
  mean /= static_cast<double>(c);
  double var = 0;
  for (double d : delta) var += (d - mean) * (d - mean);
  const double sd = c > 1 ? std::sqrt(var / static_cast<double>(c - 1)) : 0.0;
  std::vector<double> logit(c);
  for (size_t k = 0; k < c; ++k) logit[k] = (delta[k] - mean) / (sd + 1e-12) / temperature;
  const double top = *std::max_element(logit.begin(), logit.end());
  double sum = 0;
  for (double& l : logit) sum += (l = std::exp(l - top));
  for (double& l : logit) l = static_cast<double>(c) * l / sum;
  return logit;
}

void save_attention(const std::string& path, const std::map<std::string, std::vector<double>>& attention,
                    const std::map<std::string, std::string>& metadata) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [tap, a] : attention) {
    std::vector<float> values(a.begin(), a.end());
    tensors[tap] = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  }
  safetensors::save(path, tensors, metadata);
}

std::map<std::string, Tensor> load_attention(const std::string& path, const std::map<std::string, int64_t>& channels) {
  const safetensors::File file = safetensors::load(path);
  auto list = [](const auto& map) {
    std::string s;
    for (const auto& kv : map) s += (s.empty() ? "" : ",") + kv.first;
    return s;
  };
  std::map<std::string, Tensor> out;
  for (const auto& [tap, c] : channels) {
    auto it = file.tensors.find(tap);
    TETHER_CHECK(it != file.tensors.end(), "--attention ", path, ": no tensor for tap '", tap, "' (the file holds taps ",
                 list(file.tensors), "; --taps are ", list(channels), ")");
    const Tensor& a = it->second;
    TETHER_CHECK(is_floating(a.dtype()) && a.dim() == 1, "--attention ", path, ": tap '", tap, "' holds ",
                 shape_str(a.shape()), ", not a 1-D floating-point tensor");
    TETHER_CHECK(a.shape()[0] == c, "--attention ", path, ": tap '", tap, "' has ", a.shape()[0],
                 " channels in the file but ", c, " in the model");
    Tensor f = ops::cast(a, DType::f32);
    for (double v : f.to_vector<double>())
      TETHER_CHECK(std::isfinite(v) && v >= 0, "--attention ", path, ": tap '", tap, "' holds ", v,
                   " (attention must be finite and >= 0)");
    out.emplace(tap, f);
  }
  for (const auto& [name, t] : file.tensors)
    TETHER_CHECK(channels.count(name), "--attention ", path, ": tap '", name, "' is in the file but not in --taps (",
                 list(channels), ")");
  return out;
}

}  // namespace tether::reg
