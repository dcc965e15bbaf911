// SPEC 2's feature rows fnp, kd, delta and SPEC 5's source network and DELTA attention:
// - the fused per-channel distance: float64 finite differences;
// - kd and delta on resnet18: value and gradient (with respect to the tap outputs) against a
//   float64 sum written here from the taps captured by output hooks, the source features
//   coming from a second, independently built model at w0 (eval mode);
// - kd, delta and fnp: value and parameter gradients against PyTorch in float64
//   (tests/parity/ref_feature_penalties.py);
// - delta with uniform attention equals kd bit for bit (value and every parameter gradient);
// - fnp: value and gradient with respect to rep, rep rebuilt here from avgpool's output;
// - the source network is a frozen copy (later steps of the model leave it alone), kd is 0 at w0;
// - attention steps 2-3 against brute force: zeroing channel c of a conv tap's output is the
//   same as zeroing row c of that conv's weight, evaluated here on a copy of the model;
// - the errors: unknown tap, --attention missing, the file's taps and channel counts.
#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "regularizers/attention.h"
#include "regularizers/feature_penalty.h"
#include "tests/parity/parity_util.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// resnet18 with 5 classes, seeded; its state at construction is w0.
models::ModelPtr make_model(uint64_t seed) {
  manual_seed(seed);
  return models::create_model("resnet18", {5});
}

// A second model holding `model`'s current state, in eval mode: the source network, built
// here without SourceNetwork.
models::ModelPtr copy_of(const models::Model& model) {
  auto copy = models::create_model(model.name, {model.num_classes()});
  std::map<std::string, Tensor> state;
  for (const auto& [n, t] : model.state_dict()) state.emplace(n, t.detach());
  copy->load_state_dict(state);
  copy->eval();
  return copy;
}

// Moves every trainable parameter a little (the model after some fine-tuning steps).
void perturb(models::Model& model, uint64_t seed) {
  NoGradGuard g;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    p.copy_(p.detach() + testing::randn(p.shape(), seed++, DType::f32) * 0.02);
  }
}

// Captures the outputs of `taps` during the next forward (through output hooks, not taps).
struct Capture {
  std::map<std::string, Tensor> out;
  Capture(models::Model& model, const std::vector<std::string>& taps) : model_(model), taps_(taps) {
    for (const auto& t : taps)
      model.submodule(t)->set_output_hook([this, t](const Tensor& y) {
        out[t] = y;
        return y;
      });
  }
  ~Capture() {
    for (const auto& t : taps_) model_.submodule(t)->set_output_hook(nullptr);
  }
  models::Model& model_;
  std::vector<std::string> taps_;
};

Tensor batch_images(uint64_t seed, int64_t n = 3, int64_t size = 32) {
  return testing::randn({n, 3, size, size}, seed, DType::f32);
}

// One f32 tensor per tap of uniform values in [lo, hi).
std::map<std::string, std::vector<double>> random_attention(const std::map<std::string, int64_t>& channels, double lo,
                                                            double hi, uint64_t seed) {
  std::map<std::string, std::vector<double>> a;
  for (const auto& [tap, c] : channels) a[tap] = testing::uniform({c}, lo, hi, seed++).to_vector<double>();
  return a;
}

// SPEC 2's kd/delta in double from student and source features:
// α/2 · (1/B) Σ_taps Σ_i Σ_c a_c ‖s − t‖² / (H·W), and its gradient α/(B·H·W) a_c (s − t).
struct Reference {
  double value = 0;
  std::map<std::string, std::vector<double>> grad;
};
Reference kd_reference(const std::map<std::string, Tensor>& student, const std::map<std::string, Tensor>& source,
                       const std::map<std::string, std::vector<double>>& attention, double alpha) {
  Reference r;
  for (const auto& [tap, s] : student) {
    const auto sv = s.to_vector<double>(), tv = source.at(tap).to_vector<double>();
    const int64_t b = s.shape()[0], c = s.shape()[1], hw = s.numel() / (b * c);
    auto& g = r.grad[tap];
    g.assign(sv.size(), 0.0);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t k = 0; k < c; ++k) {
        const double a = attention.count(tap) ? attention.at(tap)[k] : 1.0;
        double sq = 0;
        for (int64_t p = 0; p < hw; ++p) {
          const size_t j = static_cast<size_t>((i * c + k) * hw + p);
          const double d = sv[j] - tv[j];
          sq += d * d;
          g[j] = alpha / static_cast<double>(b * hw) * a * d;
        }
        r.value += alpha / 2 / static_cast<double>(b) * a * sq / static_cast<double>(hw);
      }
  }
  return r;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_SUITE("regularizers") {
  TEST_CASE("channel_squared_distance: value and float64 finite differences, with and without attention") {
    const Tensor c = testing::randn({2, 3, 2, 3}, 2);
    const Tensor a = testing::uniform({3}, 0.1, 3.0, 3);
    for (const bool weighted : {false, true}) {
      CAPTURE(weighted);
      const Tensor x = testing::randn({2, 3, 2, 3}, 1, DType::f64, true);
      TETHER_GRADCHECK([&](const std::vector<Tensor>& in) { return reg::channel_squared_distance(in[0], c, weighted ? a : Tensor()); },
                       {x});
      // Σ_n Σ_c a_c Σ_hw (x − c)², summed here element by element.
      const auto xv = x.to_vector<double>(), cv = c.to_vector<double>(), av = a.to_vector<double>();
      double expect = 0;
      for (size_t j = 0; j < xv.size(); ++j) expect += (weighted ? av[(j / 6) % 3] : 1.0) * (xv[j] - cv[j]) * (xv[j] - cv[j]);
      CHECK(reg::channel_squared_distance(x, c, weighted ? a : Tensor()).item<double>() ==
            doctest::Approx(expect).epsilon(1e-12));
    }
    // [B, C] features (H·W = 1) work too.
    const Tensor x2 = testing::randn({4, 5}, 4, DType::f64, true);
    TETHER_GRADCHECK([&](const std::vector<Tensor>& in) { return reg::channel_squared_distance(in[0], Tensor(), Tensor()); },
                     {x2});
  }

  TEST_CASE("kd and delta (SPEC 2): value and gradient equal a float64 evaluation from the taps") {
    // Two taps on parallel branches (neither feeds the other), so the gradient with respect to
    // each tap output is the penalty's own: α/(B·H·W) a_c (s − t).
    const std::vector<std::string> taps{"layer2.0.conv1", "layer2.0.downsample"};
    const double alpha = 0.7, scale = 0.5;
    testing::TempDir dir;
    for (const std::string reg : {"kd", "delta"}) {
      CAPTURE(reg);
      auto model = make_model(11);
      auto source = copy_of(*model);  // w0, eval mode
      std::map<std::string, std::vector<double>> attention;
      reg::FeatureOptions fo{reg, alpha, taps, ""};
      if (reg == "delta") {
        attention = random_attention({{"layer2.0.conv1", 128}, {"layer2.0.downsample", 128}}, 0.0, 4.0, 20);
        fo.attention = dir.file("att.safetensors");
        reg::save_attention(fo.attention, attention, {});
      }
      reg::FeaturePenalty penalty(fo, *model);
      perturb(*model, 100);
      model->train();
      const Tensor images = batch_images(5);
      std::map<std::string, Tensor> student, teacher;
      {
        Capture cap(*model, taps);
        (*model)(images);
        student = cap.out;
      }
      {
        NoGradGuard g;
        Capture cap(*source, taps);
        (*source)(images);
        teacher = cap.out;
      }
      const reg::Terms terms = penalty.terms(images, scale);
      REQUIRE(terms.size() == 1);
      CHECK(terms[0].first == "omega.features");
      const Reference ref = kd_reference(student, teacher, attention, alpha * scale);
      CHECK(ref.value > 0);
      CHECK(terms[0].second.item<double>() == doctest::Approx(ref.value).epsilon(1e-5));
      const auto grads = grad({terms[0].second}, {student.at(taps[0]), student.at(taps[1])});
      for (size_t k = 0; k < taps.size(); ++k) {
        CAPTURE(taps[k]);
        const auto g = grads[k].to_vector<double>();
        const auto& expect = ref.grad.at(taps[k]);
        double worst = 0;
        for (size_t j = 0; j < g.size(); ++j) worst = std::max(worst, std::abs(g[j] - expect[j]));
        CHECK(worst <= 1e-5 * max_abs(expect));
      }
    }
  }

  TEST_CASE("kd, delta, fnp (SPEC 2): value and parameter gradients equal PyTorch's float64 evaluation") {
    const auto ref = parity::reference("ref_feature_penalties.py");
    if (!ref) return;
    std::map<std::string, Tensor> w0, w;
    for (const auto& [name, t] : ref->tensors()) {
      if (name.rfind("w0.", 0) == 0) w0.emplace(name.substr(3), t);
      if (name.rfind("w.", 0) == 0) w.emplace(name.substr(2), t);
    }
    testing::TempDir dir;
    const std::string path = dir.file("att.safetensors");
    safetensors::save(path, {{"layer1", ref->at("att.layer1")}, {"layer3", ref->at("att.layer3")}});
    for (const std::string reg : {"kd", "delta", "fnp"}) {
      CAPTURE(reg);
      auto model = models::create_model("resnet18", {5});
      model->load_state_dict(w0);
      reg::FeaturePenalty penalty({reg, 0.7, reg == "fnp" ? std::vector<std::string>{} : std::vector<std::string>{"layer1", "layer3"},
                                   reg == "delta" ? path : ""},
                                  *model);
      model->load_state_dict(w, /*strict=*/false);  // the trained weights (parameters only)
      model->train();
      const Tensor x = ref->at("x");
      (*model)(x);
      const Tensor omega = penalty.terms(x, 1.0).at(0).second;
      CHECK(omega.item<double>() == doctest::Approx(ref->at(reg + ".value").item<double>()).epsilon(1e-4));
      omega.backward();
      int checked = 0;
      for (const auto& [name, p] : model->named_parameters()) {
        if (!ref->has(reg + ".grad." + name)) continue;
        ++checked;
        const Tensor want = ref->at(reg + ".grad." + name);
        const Tensor got = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape());
        const double scale = std::max(ops::norm(want, INFINITY), 1e-12);
        parity::expect_close(reg + " grad " + name, got, want, 1e-3, 1e-3 * scale);
      }
      CHECK(checked == 8);
    }
  }

  TEST_CASE("delta with uniform attention equals kd exactly (value and every parameter gradient)") {
    testing::TempDir dir;
    const std::string path = dir.file("ones.safetensors");
    reg::save_attention(path, {{"layer2", std::vector<double>(128, 1.0)}, {"layer4", std::vector<double>(512, 1.0)}},
                        {});
    auto model = make_model(12);
    const auto w0 = copy_of(*model);
    std::map<std::string, Tensor> w0_state;
    for (const auto& [n, t] : w0->state_dict()) w0_state.emplace(n, t);
    const Tensor images = batch_images(6);
    std::map<std::string, std::pair<double, std::map<std::string, std::vector<float>>>> result;
    for (const std::string reg : {"kd", "delta"}) {
      model->load_state_dict(w0_state);  // both start at the same w0 and move to the same weights
      reg::FeaturePenalty penalty({reg, 0.3, {"layer2", "layer4"}, reg == "delta" ? path : ""}, *model);
      perturb(*model, 200);
      model->zero_grad();
      model->train();
      (*model)(images);
      const Tensor omega = penalty.terms(images, 1.0)[0].second;
      omega.backward();
      auto& [value, grads] = result[reg];
      value = omega.item<double>();
      for (const auto& [name, p] : model->named_parameters())
        if (p.grad().defined()) grads[name] = p.grad().to_vector<float>();
    }
    CHECK(result["kd"].first > 0);
    CHECK(result["kd"].first == result["delta"].first);
    CHECK(result["kd"].second.size() > 10);
    CHECK(result["kd"].second == result["delta"].second);
  }

  TEST_CASE("fnp (SPEC 2): α/2 · (1/B) Σ ‖rep‖², gradient α/B rep, rep = the pooled input of fc") {
    auto model = make_model(13);
    const double alpha = 0.9, scale = 2.0;
    reg::FeaturePenalty penalty({"fnp", alpha, {}, ""}, *model);
    model->train();
    const Tensor images = batch_images(7, 4);
    Capture cap(*model, {"avgpool"});
    (*model)(images);
    const Tensor pooled = cap.out.at("avgpool");  // [B, 512, 1, 1]: rep before the flatten
    const reg::Terms terms = penalty.terms(images, scale);
    REQUIRE(terms.size() == 1);
    CHECK(terms[0].first == "omega.features");
    const auto rep = pooled.to_vector<double>();
    double sq = 0;
    for (double v : rep) sq += v * v;
    CHECK(terms[0].second.item<double>() == doctest::Approx(scale * alpha / 2 / 4 * sq).epsilon(1e-5));
    const auto g = grad({terms[0].second}, {pooled})[0].to_vector<double>();
    double worst = 0;
    for (size_t j = 0; j < g.size(); ++j) worst = std::max(worst, std::abs(g[j] - scale * alpha / 4 * rep[j]));
    CHECK(worst <= 1e-6 * max_abs(rep));
    // The head part lives in the weight-space penalty: make_penalty gives only "omega.head".
    const auto sets = reg::select_param_sets(*model, reg::ParamFilter::weights);
    for (const std::string r : {"fnp", "kd", "delta"}) {
      const auto head = reg::make_penalty({r, alpha, 0.25}, sets);
      REQUIRE(head);
      const reg::Terms t = head->terms(1.0);
      REQUIRE(t.size() == 1);
      CHECK(t[0].first == "omega.head");
      CHECK(t[0].second.item<double>() == doctest::Approx(0.125 * reg::sum_squares(sets.head).item<double>()));
    }
  }

  TEST_CASE("source network (SPEC 5): a frozen eval-mode copy at w0; kd is 0 at w0 in eval mode") {
    auto model = make_model(14);
    auto reference = copy_of(*model);
    reg::SourceNetwork source(*model, {"layer2", "layer4"});
    for (const auto& [n, p] : source.model().named_parameters()) CHECK(!p.requires_grad());
    perturb(*model, 300);  // the model moves on; the source must not
    const Tensor images = batch_images(8);
    const nn::TapStore got = source.features(images);
    NoGradGuard g;
    Capture cap(*reference, {"layer2", "layer4"});
    (*reference)(images);
    for (const std::string tap : {"layer2", "layer4"}) {
      CAPTURE(tap);
      CHECK(!got.at(tap).requires_grad());
      CHECK(ops::norm(ops::binary(ops::Binary::sub, got.at(tap), cap.out.at(tap))) == 0.0);
    }
    CHECK(source.channel_counts() == std::map<std::string, int64_t>{{"layer2", 128}, {"layer4", 512}});

    auto fresh = make_model(15);
    reg::FeaturePenalty kd({"kd", 1.0, {}, ""}, *fresh);  // default taps
    CHECK(kd.taps() == std::vector<std::string>{"layer1", "layer2", "layer3", "layer4"});
    fresh->eval();
    (*fresh)(images);
    CHECK(kd.terms(images, 1.0)[0].second.item<double>() == 0.0);
  }

  TEST_CASE("feature penalty errors: unknown tap, --attention missing, the file's taps and channel counts") {
    auto model = make_model(16);
    CHECK(contains(testing::error_of([&] { reg::FeaturePenalty({"kd", 1.0, {"layer1", "layer9"}, ""}, *model); }),
                   "'layer9'"));
    CHECK(contains(testing::error_of([&] { reg::FeaturePenalty({"delta", 1.0, {}, ""}, *model); }), "--attention"));
    CHECK(contains(testing::error_of([&] { reg::FeaturePenalty({"kd", 1.0, {}, "a.safetensors"}, *model); }),
                   "--attention"));
    testing::TempDir dir;
    const std::string path = dir.file("att.safetensors");
    reg::save_attention(path, {{"layer1", std::vector<double>(64, 1.0)}, {"layer2", std::vector<double>(100, 1.0)}}, {});
    const std::string wrong_count =
        testing::error_of([&] { reg::FeaturePenalty({"delta", 1.0, {"layer1", "layer2"}, path}, *model); });
    CHECK(contains(wrong_count, path));
    CHECK(contains(wrong_count, "'layer2'"));
    CHECK(contains(wrong_count, "100"));
    CHECK(contains(wrong_count, "128"));
    const std::string missing = testing::error_of([&] { reg::FeaturePenalty({"delta", 1.0, {"layer1", "layer3"}, path}, *model); });
    CHECK(contains(missing, path));
    CHECK(contains(missing, "'layer3'"));
    const std::string extra = testing::error_of([&] { reg::FeaturePenalty({"delta", 1.0, {"layer1"}, path}, *model); });
    CHECK(contains(extra, "'layer2'"));
    CHECK(contains(extra, "not in --taps"));
    // A model that has not been damaged by a failed construction: the right file loads.
    reg::save_attention(path, {{"layer1", std::vector<double>(64, 2.0)}}, {});
    reg::FeaturePenalty ok({"delta", 1.0, {"layer1"}, path}, *model);
    CHECK(ok.attention().at("layer1").shape() == Shape{64});
  }

  TEST_CASE("attention (SPEC 5 steps 2-3) equals a brute-force evaluation: zeroed conv rows on a copy") {
    auto model = make_model(17);
    perturb(*model, 400);
    // Two batches of different sizes (the mean is over images).
    std::vector<std::pair<Tensor, Tensor>> batches{
        {batch_images(30, 3, 16), Tensor::from_vector(std::vector<int64_t>{0, 3, 4}, {3})},
        {batch_images(31, 2, 16), Tensor::from_vector(std::vector<int64_t>{1, 2}, {2})}};
    const std::vector<std::string> taps{"conv1", "layer1.0.conv2"};  // convs without bias: zero row c = zero channel c
    const auto delta = reg::channel_loss_increase(*model, taps, batches);

    auto mean_ce = [&](models::Model& m) {
      NoGradGuard g;
      m.eval();
      double sum = 0, n = 0;
      for (const auto& [x, y] : batches) {
        const Tensor logp = log_softmax(m(x), 1);
        const auto lp = logp.to_vector<double>();
        const auto labels = y.to_vector<int64_t>();
        for (size_t i = 0; i < labels.size(); ++i) sum -= lp[i * 5 + static_cast<size_t>(labels[i])], n += 1;
      }
      return sum / n;
    };
    const double base = mean_ce(*model);
    for (const auto& tap : taps) {
      CAPTURE(tap);
      const auto& d = delta.at(tap);
      const Tensor w = model->submodule(tap)->named_parameters().at(0).second;
      REQUIRE(static_cast<int64_t>(d.size()) == w.shape()[0]);
      double spread = 0;
      auto copy = copy_of(*model);
      const Tensor wc = copy->submodule(tap)->named_parameters().at(0).second;
      for (int64_t c = 0; c < w.shape()[0]; ++c) {
        const Tensor row = ops::select(wc, 0, c);
        const Tensor saved = row.clone();
        {
          NoGradGuard g;
          ops::fill_(row, 0.0);
        }
        const double expect = mean_ce(*copy) - base;
        ops::copy_(row, saved);
        spread = std::max(spread, std::abs(expect));
        CHECK(d[static_cast<size_t>(c)] == doctest::Approx(expect).epsilon(1e-3).scale(1e-3));
      }
      CHECK(spread > 1e-4);  // the channels matter: the check above compares real differences

      // Step 3 in double, written here: z = (Δ − mean) / (unbiased std + 1e-12), a = C softmax(z / τ).
      const double tau = 5;
      const double cnt = static_cast<double>(d.size());
      double mean = 0, var = 0;
      for (double v : d) mean += v / cnt;
      for (double v : d) var += (v - mean) * (v - mean) / (cnt - 1);
      double z_sum = 0;
      std::vector<double> e;
      for (double v : d) e.push_back(std::exp((v - mean) / (std::sqrt(var) + 1e-12) / tau)), z_sum += e.back();
      const auto a = reg::attention_from_increase(d, tau);
      double a_sum = 0;
      for (size_t c = 0; c < d.size(); ++c) {
        CHECK(a[c] == doctest::Approx(cnt * e[c] / z_sum).epsilon(1e-12));
        a_sum += a[c];
      }
      CHECK(a_sum == doctest::Approx(cnt).epsilon(1e-12));
    }
    // Hooks are removed: the model computes what it did before.
    CHECK(mean_ce(*model) == base);
  }

  TEST_CASE("attention step 1: train_head changes only the head and lowers the loss") {
    auto model = make_model(18);
    const Tensor images = batch_images(40, 12);
    std::vector<int64_t> y;
    for (int i = 0; i < 12; ++i) y.push_back(i % 5);
    const Tensor labels = Tensor::from_vector(y, {12});
    const Tensor reps = reg::representation(*model, images);
    CHECK(reps.shape() == Shape{12, 512});
    std::map<std::string, Tensor> before;
    for (const auto& [n, p] : model->named_parameters()) before[n] = p.clone();
    reg::HeadTrainingOptions one{1, 4, 0.01, 0.9, 0};
    const double first = reg::train_head(*model, reps, labels, one);
    reg::HeadTrainingOptions more{30, 4, 0.01, 0.9, 1};
    const double last = reg::train_head(*model, reps, labels, more);
    CHECK(last < first);
    for (const auto& [n, p] : model->named_parameters()) {
      CAPTURE(n);
      const double moved = ops::norm(ops::binary(ops::Binary::sub, p, before.at(n)));
      if (n.rfind("fc.", 0) == 0)
        CHECK(moved > 0);
      else
        CHECK(moved == 0.0);
    }
  }
}
