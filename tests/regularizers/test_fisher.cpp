// SPEC 4: the diagonal Fisher information (regularizers/fisher.h) and `tether fisher`.
//  - exact and empirical equal PyTorch's per-sample computation (tests/parity/ref_fisher.py) on
//    a resnet18 in eval mode with randomised BN statistics (so batch gradients, train mode or
//    a missing p_k weight would all fail it);
//  - sampled is an unbiased Monte Carlo estimate of exact, deterministic for a seed;
//  - the CLI writes one tensor per parameter with metadata and a CSV row per parameter, and
//    rejects bad flags by name.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/safetensors.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/pooling.h"
#include "layers/sequential.h"
#include "models/registry.h"
#include "models/weights.h"
#include "regularizers/fisher.h"
#include "tests/parity/parity_util.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;
using namespace tether::testing;

namespace {

const std::string kTether = TETHER_BINARY_DIR "/tether";

// max |got − want| / max |want| over one tensor (SPEC 4 parity: relative to the tensor's max).
double error_against_max(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  const auto x = got.to_vector<double>(), y = want.to_vector<double>();
  double diff = 0, top = 0;
  for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, std::abs(x[i] - y[i])), top = std::max(top, std::abs(y[i]));
  return top > 0 ? diff / top : diff;
}

// ‖got − want‖ / ‖want‖ over one tensor.
double relative_l2(const Tensor& got, const Tensor& want) {
  const auto x = got.to_vector<double>(), y = want.to_vector<double>();
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) d += (x[i] - y[i]) * (x[i] - y[i]), n += y[i] * y[i];
  return std::sqrt(d / n);
}

// A tiny classifier (conv → ReLU → pool → linear, 3 classes) with seeded weights.
std::shared_ptr<nn::Sequential> tiny_model() {
  manual_seed(7);
  nn::Conv2dOptions c;
  c.in = 3, c.out = 4, c.kernel = 3, c.padding = 1;
  nn::LinearOptions l;
  l.in = 4, l.out = 3;
  auto m = nn::make<nn::Sequential>(std::vector<nn::ModulePtr>{nn::make<nn::Conv2d>(c), nn::make<nn::ReLU>(),
                                                               nn::make<nn::AdaptiveAvgPool2d>(1),
                                                               nn::make<nn::Flatten>(), nn::make<nn::Linear>(l)});
  return m;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("Fisher: exact and empirical equal PyTorch's per-sample reference (SPEC 4)") {
    auto ref = parity::reference("ref_fisher.py");
    if (!ref) return;
    auto model = models::create_model("resnet18", {3});
    std::map<std::string, Tensor> weights;
    for (const auto& [name, t] : ref->tensors())
      if (name.rfind("w.", 0) == 0) weights[name.substr(2)] = t;
    REQUIRE(models::load_weights(*model, weights, "ref_fisher.py").head_loaded);
    const Tensor& x = ref->at("input");
    const std::vector<int64_t> labels = ref->at("target").to_vector<int64_t>();
    model->train();  // compute_fisher must switch to eval mode itself (and restore this)
    for (const char* mode : {"exact", "empirical"}) {
      const auto fisher = reg::compute_fisher(*model, x, labels, reg::parse_fisher_mode(mode));
      CHECK(model->is_training());
      REQUIRE(fisher.size() == model->named_parameters().size());
      double worst = 0;
      std::string worst_name;
      for (const auto& [name, p] : model->named_parameters()) {
        REQUIRE(fisher.count(name));
        const double e = error_against_max(fisher.at(name), ref->at(std::string(mode) + "." + name));
        INFO(mode << " " << name << ": max |F − F_torch| / max F_torch = " << e);
        CHECK(e <= 1e-3);
        if (e > worst) worst = e, worst_name = name;
      }
      MESSAGE("Fisher " << std::string(mode) << " vs PyTorch (f64) on resnet18: worst per-tensor error / max = " << worst << " ("
                        << worst_name << ")");
    }
  }

  TEST_CASE("Fisher: sampled is an unbiased, seeded Monte Carlo estimate of exact (SPEC 4)") {
    auto model = tiny_model();
    const Tensor one = randn({1, 3, 6, 6}, 3, DType::f32);
    const int64_t n = 2000;
    const Tensor images = contiguous(expand(one, {n, 3, 6, 6}));
    const std::vector<int64_t> labels(static_cast<size_t>(n), 0);
    const auto exact = reg::compute_fisher(*model, narrow(images, 0, 0, 1), {0}, reg::FisherMode::exact);
    const auto sampled = reg::compute_fisher(*model, images, labels, reg::FisherMode::sampled, 42);
    const auto again = reg::compute_fisher(*model, images, labels, reg::FisherMode::sampled, 42);
    const auto other = reg::compute_fisher(*model, narrow(images, 0, 0, 50), {labels.begin(), labels.begin() + 50},
                                           reg::FisherMode::sampled, 43);
    const auto other42 = reg::compute_fisher(*model, narrow(images, 0, 0, 50), {labels.begin(), labels.begin() + 50},
                                             reg::FisherMode::sampled, 42);
    // The class probabilities of this input are far from one-hot (else sampled == exact trivially).
    const auto logits = (*model)(one).to_vector<double>();
    INFO("logits " << logits[0] << " " << logits[1] << " " << logits[2]);
    double worst = 0;
    bool seeds_differ = false;
    for (const auto& [name, p] : model->named_parameters()) {
      const double e = relative_l2(sampled.at(name), exact.at(name));
      INFO(name << ": ‖F_sampled − F_exact‖ / ‖F_exact‖ = " << e);
      CHECK(e < 0.05);
      worst = std::max(worst, e);
      CHECK(again.at(name).to_vector<float>() == sampled.at(name).to_vector<float>());  // deterministic for a seed
      seeds_differ |= close_ratio(other.at(name), other42.at(name), 1e-6, 0) > 1;
    }
    CHECK(seeds_differ);
    MESSAGE("Fisher sampled (N = " << n << ", fixed input) vs exact: worst per-tensor relative L2 error " << worst);
  }

  TEST_CASE("Fisher: one sample's exact Fisher is the p-weighted sum of its per-class empirical Fishers") {
    // Ties the modes together without PyTorch: F_exact(x) = Σ_k p_k F_emp(x, k).
    auto model = tiny_model();
    const Tensor x = randn({1, 3, 5, 5}, 9, DType::f32);
    const auto exact = reg::compute_fisher(*model, x, {0}, reg::FisherMode::exact);
    std::vector<double> p = (*model)(x).to_vector<double>();
    double z = 0;
    for (double& v : p) z += (v = std::exp(v));
    std::map<std::string, std::vector<double>> mix;
    for (int64_t k = 0; k < 3; ++k) {
      const auto emp = reg::compute_fisher(*model, x, {k}, reg::FisherMode::empirical);
      for (const auto& [name, t] : emp) {
        auto v = t.to_vector<double>();
        auto& m = mix[name];
        m.resize(v.size());
        for (size_t j = 0; j < v.size(); ++j) m[j] += p[k] / z * v[j];
      }
    }
    for (const auto& [name, t] : exact) {
      const Tensor want = Tensor::from_vector(mix[name], t.shape());
      INFO(name);
      CHECK(close_ratio(t, want, 1e-4, 1e-9) <= 1.0);
    }
  }

  TEST_CASE("Fisher: the accumulator restores requires_grad, leaves .grad alone, and rejects bad input") {
    auto model = tiny_model();
    auto params = model->named_parameters();
    params[0].second.set_requires_grad(false);  // a frozen parameter still gets its F
    const auto f = reg::compute_fisher(*model, randn({2, 3, 4, 4}, 1, DType::f32), {0, 2}, reg::FisherMode::empirical);
    CHECK(!params[0].second.requires_grad());
    double total = 0;
    for (double v : f.at(params[0].first).to_vector<double>()) total += v;
    CHECK(total > 0);
    for (const auto& [name, p] : params) CHECK(!p.grad().defined());
    CHECK(contains(error_of([] { reg::parse_fisher_mode("foo"); }), "--mode"));
    CHECK(contains(error_of([&] {
                     reg::compute_fisher(*model, randn({1, 3, 4, 4}, 1, DType::f32), {3}, reg::FisherMode::empirical);
                   }),
                   "label 3"));
  }

  TEST_CASE("tether fisher on Fashion-MNIST: one tensor per parameter, metadata, CSV; bad flags named (SPEC 4)") {
    TempDir tmp;
    manual_seed(1);
    auto model = models::create_model("resnet18", {3});
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : model->state_dict()) state[name] = t;
    const std::string weights = tmp.file("w.safetensors");
    safetensors::save(weights, state);
    const std::string base = kTether + " fisher --model resnet18 --weights " + weights +
                             " --data fashion-mnist --classes 0,1,2 --input-size 28 --augment none" +
                             " --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353 --threads 2 --workers 1";
    const std::string out = tmp.file("F.safetensors"), csv = tmp.file("F.csv");
    const auto r = run_command(base + " --samples 8 --mode empirical --seed 4 --out " + out + " --csv " + csv);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto file = safetensors::load(out);
    CHECK(file.metadata.at("mode") == "empirical");
    CHECK(file.metadata.at("samples") == "8");
    CHECK(file.metadata.at("model") == "resnet18");
    const auto params = model->named_parameters();
    CHECK(file.tensors.size() == params.size());
    for (const auto& [name, p] : params) {
      REQUIRE(file.tensors.count(name));
      const Tensor& f = file.tensors.at(name);
      CHECK(f.shape() == p.shape());
      CHECK(f.dtype() == DType::f32);
      bool ok = true;
      for (double v : f.to_vector<double>()) ok &= std::isfinite(v) && v >= 0;
      CHECK(ok);
    }
    double fc_max = 0;
    for (double v : file.tensors.at("fc.weight").to_vector<double>()) fc_max = std::max(fc_max, v);
    CHECK(fc_max > 0);
    std::istringstream lines(read_bytes(csv));
    std::vector<std::string> rows;
    for (std::string line; std::getline(lines, line);) rows.push_back(line);
    REQUIRE(rows.size() == params.size() + 1);
    CHECK(rows[0] == "name,numel,min,median,max");
    CHECK(rows[1].rfind(params[0].first + ",", 0) == 0);
    CHECK(contains(r.output, "fc.weight"));

    for (const auto& [flags, culprit] : std::vector<std::pair<std::string, std::string>>{
             {" --samples 8 --mode foo", "--mode"},
             {" --samples 0 --mode exact", "--samples"},
             {" --samples 18001 --mode exact", "--samples"}}) {
      const auto bad = run_command(base + flags + " --out " + tmp.file("bad.safetensors"));
      INFO(flags << ": " << bad.output);
      CHECK(bad.code != 0);
      CHECK(contains(bad.output, culprit));
      CHECK(!std::filesystem::exists(tmp.file("bad.safetensors")));
    }
  }
}
