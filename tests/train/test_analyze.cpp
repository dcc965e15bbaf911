// `tether analyze` (issue 7) and its library (tools/train/analysis.h): the per-channel R² of
// fine-tuned on pretrained activations (the L2-SP paper's Figure 4) against an independent
// two-pass computation, on synthetic data and on resnet18 taps collected here, and against
// PyTorch (tests/parity/ref_analyze.py); the PtR paper's prediction statistics against
// hand-worked values; the command end to end and its flag errors.
#include <algorithm>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tests/parity/parity_util.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"
#include "tests/train/fashion_folder.h"
#include "tools/train/analysis.h"

using namespace tether;
using namespace tether::testing;
using namespace tether::train;

namespace {

// R² of y on x by the textbook two-pass formula, with analysis.h's rules for constant x or y.
double two_pass_r2(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  const auto constant = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [&](double a) { return a == v[0]; });
  };
  if (constant(y)) return 1;
  if (constant(x)) return 0;
  return sxy * sxy / (sxx * syy);
}

// Appends channel c of an [N, C, H, W] (or [N, C]) tensor to out.
void append_channel(const Tensor& t, int64_t c, std::vector<double>& out) {
  const auto v = t.to_vector<double>();
  const int64_t n = t.size(0), ch = t.size(1), hw = t.numel() / (n * ch);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p) out.push_back(v[static_cast<size_t>((i * ch + c) * hw + p)]);
}

std::map<std::string, Tensor> state_of(const models::Model& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t.clone();
  return out;
}

// A resnet18 "fine-tuned" from `source`: every conv weight moved by 0.03·N(0, 1).
std::map<std::string, Tensor> perturbed(const std::map<std::string, Tensor>& source, uint64_t seed) {
  auto out = source;
  for (auto& [name, t] : out)
    if (t.dim() == 4) t = tether::add(t, ops::mul_scalar(randn(t.shape(), ++seed, DType::f32), 0.03));
  return out;
}

const std::string kTether = TETHER_BINARY_DIR "/tether";

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("R² per channel: one-pass sums against a two-pass computation, affine = 1, noise ~ 0, constants") {
    const int64_t C = 7, H = 8, W = 8;
    ChannelR2 acc(C);
    std::vector<std::vector<double>> xs(C), ys(C);
    uint64_t seed = 11;
    for (int64_t n : {10, 20, 30}) {  // three batches
      auto x = randn({n, C, H, W}, ++seed).to_vector<double>(), y = randn({n, C, H, W}, ++seed).to_vector<double>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < H * W; ++p) {
            const size_t k = static_cast<size_t>((i * C + c) * H * W + p);
            double& a = x[k];
            double& b = y[k];
            switch (c) {
              case 0: b = 2 * a + 1; break;                  // exact affine: R² = 1
              case 1: break;                                 // independent noise: R² ~ 1/n
              case 2: a += 1e4, b = a + 0.5 * b; break;      // R² = 1/1.25, far from zero mean
              case 3: a = 3; break;                          // x constant, y not: 0
              case 4: b = -1.5; break;                       // y constant: 1
              case 5: a = 0, b = 0; break;                   // a dead channel that stays dead: 1
              case 6: b = -0.3 * a + 0.8 * b; break;         // negative slope
            }
          }
      const Tensor xt = Tensor::from_vector(x, {n, C, H, W}), yt = Tensor::from_vector(y, {n, C, H, W});
      acc.add(xt, yt);
      for (int64_t c = 0; c < C; ++c) append_channel(xt, c, xs[c]), append_channel(yt, c, ys[c]);
    }
    const auto r2 = acc.r2();
    CHECK(acc.count() == 60 * H * W);
    REQUIRE(r2.size() == static_cast<size_t>(C));
    CHECK(r2[0] == doctest::Approx(1).epsilon(1e-12));
    CHECK(r2[1] < 0.01);
    CHECK(r2[2] == doctest::Approx(0.8).epsilon(0.05));
    CHECK(r2[3] == 0);
    CHECK(r2[4] == 1);
    CHECK(r2[5] == 1);
    for (int64_t c = 0; c < C; ++c) {
      INFO("channel " << c);
      CHECK(r2[c] == doctest::Approx(two_pass_r2(xs[c], ys[c])).epsilon(1e-9));
      CHECK(r2[c] >= 0);
      CHECK(r2[c] <= 1);
    }
    // float32 activations and 2-D taps [N, C] take the same path.
    ChannelR2 flat(2);
    const Tensor a = randn({50, 2}, 5, DType::f32), b = randn({50, 2}, 6, DType::f32);
    flat.add(a, tether::add(a, b));
    std::vector<double> xa, ya;
    append_channel(a, 1, xa);
    append_channel(tether::add(a, b), 1, ya);
    CHECK(flat.r2()[1] == doctest::Approx(two_pass_r2(xa, ya)).epsilon(1e-9));
    CHECK(contains(error_of([&] { flat.add(a, randn({50, 3}, 7, DType::f32)); }), "differ in shape"));
  }

  TEST_CASE("describe: min, quartiles and mean as numpy's linear percentiles") {
    const Distribution d = describe({4, 1, 3, 2});
    CHECK(d.min == 1);
    CHECK(d.q1 == doctest::Approx(1.75));
    CHECK(d.median == doctest::Approx(2.5));
    CHECK(d.q3 == doctest::Approx(3.25));
    CHECK(d.max == 4);
    CHECK(d.mean == doctest::Approx(2.5));
  }

  TEST_CASE("feature R² on resnet18 taps: 1 for the same backbone (other head), brute force for a perturbed one") {
    const models::ModelPtr source = models::create_model("resnet18", {.num_classes = 10});
    const auto w0 = state_of(*source);
    const Tensor batch1 = randn({3, 3, 32, 32}, 21, DType::f32), batch2 = randn({2, 3, 32, 32}, 22, DType::f32);
    const std::vector<std::string> taps = source->default_taps();

    SUBCASE("same backbone, a 3-class head: R² = 1 on every channel of every tap") {
      const models::ModelPtr tuned = models::create_model("resnet18", {.num_classes = 3});
      CHECK_FALSE(models::load_weights(*tuned, w0, "w0").head_loaded);
      FeatureR2 acc(*source, *tuned, taps);
      acc.add(batch1);
      acc.add(batch2);
      const auto rows = acc.result();
      REQUIRE(rows.size() == 4);
      const std::vector<size_t> channels{64, 128, 256, 512};
      for (size_t j = 0; j < rows.size(); ++j) {
        CHECK(rows[j].tap == taps[j]);
        CHECK(rows[j].r2.size() == channels[j]);
        for (double r : rows[j].r2) CHECK(r == doctest::Approx(1).epsilon(1e-12));
      }
      CHECK(rows[0].observations == 5 * 8 * 8);  // layer1 of a 32×32 input is 8×8
    }

    SUBCASE("perturbed backbone: each channel's R² equals a two-pass computation on the taps collected here") {
      const models::ModelPtr tuned = models::create_model("resnet18", {.num_classes = 10});
      tuned->load_state_dict(perturbed(w0, 300));
      source->eval();
      tuned->eval();
      // Collect every tap output of both models by hand.
      std::map<std::string, std::vector<Tensor>> xs, ys;
      {
        NoGradGuard no_grad;
        auto sx = std::make_shared<nn::TapStore>(), sy = std::make_shared<nn::TapStore>();
        source->set_taps(taps, sx);
        tuned->set_taps(taps, sy);
        for (const Tensor& b : {batch1, batch2}) {
          (*source)(b);
          (*tuned)(b);
          for (const auto& t : taps) xs[t].push_back(sx->at(t).clone()), ys[t].push_back(sy->at(t).clone());
        }
        source->set_taps({}, nullptr);
        tuned->set_taps({}, nullptr);
      }
      std::vector<TapR2> rows;
      {
        FeatureR2 acc(*source, *tuned, taps);
        acc.add(batch1);
        acc.add(batch2);
        rows = acc.result();
      }
      double lowest = 1;
      for (const auto& row : rows) {
        const int64_t ch = static_cast<int64_t>(row.r2.size());
        REQUIRE(ch == xs[row.tap][0].size(1));
        for (int64_t c = 0; c < ch; c += 7) {  // every 7th channel keeps the brute force quick
          std::vector<double> x, y;
          for (size_t b = 0; b < 2; ++b) append_channel(xs[row.tap][b], c, x), append_channel(ys[row.tap][b], c, y);
          INFO(row.tap << " channel " << c);
          CHECK(row.r2[static_cast<size_t>(c)] == doctest::Approx(two_pass_r2(x, y)).epsilon(1e-9));
        }
        for (double r : row.r2) lowest = std::min(lowest, r);
      }
      CHECK(lowest < 0.99);  // the perturbation is visible: not a vacuous comparison of ones
    }
  }

  TEST_CASE("feature R² equals PyTorch's (tests/parity/ref_analyze.py): resnet18 taps, heads of 10 and 3 classes") {
    auto ref = parity::reference("ref_analyze.py");
    if (!ref) return;
    std::map<std::string, Tensor> w0, w;
    for (const auto& [name, t] : ref->tensors()) {
      if (name.rfind("w0.", 0) == 0) w0[name.substr(3)] = t;
      else if (name.rfind("w.", 0) == 0) w[name.substr(2)] = t;
    }
    const models::ModelPtr source = models::create_model("resnet18", {.num_classes = 10});
    const models::ModelPtr tuned = models::create_model("resnet18", {.num_classes = 3});
    REQUIRE(models::load_weights(*source, w0, "w0").head_loaded);
    REQUIRE(models::load_weights(*tuned, w, "w").head_loaded);
    const Tensor& x = ref->at("input");
    FeatureR2 acc(*source, *tuned, source->default_taps());
    acc.add(narrow(x, 0, 0, 4));  // two batches of the same six images
    acc.add(narrow(x, 0, 4, 2));
    for (const auto& row : acc.result()) {
      const Tensor want = ref->at("r2." + row.tap);
      // float32 forwards on both sides: R² agrees to ~1e-6 (tether and torch round differently).
      parity::expect_close("R² " + row.tap, Tensor::from_vector(row.r2, {static_cast<int64_t>(row.r2.size())}), want,
                           0, 2e-5);
    }
  }

  TEST_CASE("prediction statistics: probability-confusion diagonal and off-diagonal sums, entropy in bits") {
    PredictionStatsAccumulator acc(4);  // class 3 has no image
    // Named rows: passing the nested braced lists {{...}, {...}} straight to add(), twice, delivered
    // the first call's second row as {0.5, 0.5, 0.5, 0.5} when this file was built with GCC 12.2
    // at -O3 (correct at -O0; not reproduced in a standalone program): most likely a compiler bug.
    const std::vector<double> r0{0.7, 0.2, 0.1, 0.0}, r1{0.5, 0.5, 0.0, 0.0}, r2{0.1, 0.8, 0.1, 0.0},
        r3{0.25, 0.25, 0.5, 0.0};
    acc.add(std::vector<std::vector<double>>{r0, r1}, {0, 0});
    acc.add(std::vector<std::vector<double>>{r2, r3}, {1, 2});
    const PredictionStats s = acc.result();
    CHECK(s.samples == 4);
    CHECK(s.classes_present == 3);
    const std::vector<std::vector<double>> p{
        {0.6, 0.35, 0.05, 0}, {0.1, 0.8, 0.1, 0}, {0.25, 0.25, 0.5, 0}, {0, 0, 0, 0}};
    for (size_t k = 0; k < 4; ++k)
      for (size_t l = 0; l < 4; ++l) CHECK(s.confusion[k][l] == doctest::Approx(p[k][l]));
    CHECK(s.diagonal_sum == doctest::Approx(0.6 + 0.8 + 0.5));
    CHECK(s.off_diagonal_sum == doctest::Approx(0.35 + 0.05 + 0.1 + 0.1 + 0.25 + 0.25));
    const auto h = [](std::vector<double> q) {
      double e = 0;
      for (double v : q) e -= v > 0 ? v * std::log2(v) : 0;
      return e;
    };
    const double entropy = (h({0.7, 0.2, 0.1}) + 1.0 + h({0.1, 0.8, 0.1}) + 1.5) / 4;  // 0.5/0.5 = 1 bit, .25/.25/.5 = 1.5
    CHECK(s.entropy_bits == doctest::Approx(entropy));
    CHECK(contains(error_of([&] { acc.add({{1, 0, 0, 0}}, {4}); }), "label 4"));
  }

  TEST_CASE("tether analyze: --r2 CSV and summary, --predictions-stats, and flag errors naming the flag") {
    TempDir tmp;
    write_fashion_folder(tmp.file("fashion"), 0, 3);  // val/: 3 images of each of 3 classes
    const models::ModelPtr source = models::create_model("resnet18", {.num_classes = 10});
    const auto w0 = state_of(*source);
    safetensors::save(tmp.file("w0.safetensors"), w0);
    const models::ModelPtr tuned = models::create_model("resnet18", {.num_classes = 3});
    models::load_weights(*tuned, w0, "w0");  // the same backbone, a fresh 3-class head
    safetensors::save(tmp.file("w.safetensors"), state_of(*tuned));
    const std::string base = kTether + " analyze --model resnet18 --data " + tmp.file("fashion") +
                             " --input-size 32 --threads 2 --workers 1 --weights " + tmp.file("w.safetensors");

    const auto r = run_command(base + " --source " + tmp.file("w0.safetensors") + " --r2 " + tmp.file("r2.csv") +
                               " --predictions-stats --json " + tmp.file("a.json"));
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(contains(r.output, "layer4"));
    CHECK(contains(r.output, "diagonal sum"));
    std::istringstream csv(read_bytes(tmp.file("r2.csv")));
    std::string line;
    std::getline(csv, line);
    CHECK(line == "tap,channel,r2");
    int rows = 0;
    while (std::getline(csv, line)) {
      ++rows;
      CHECK(std::stod(line.substr(line.rfind(',') + 1)) == doctest::Approx(1).epsilon(1e-9));
    }
    CHECK(rows == 64 + 128 + 256 + 512);
    const auto j = nlohmann::json::parse(read_bytes(tmp.file("a.json")));
    CHECK(j["predictions"]["samples"] == 9);
    CHECK(j["predictions"]["classes_present"] == 3);
    CHECK(j["predictions"]["diagonal_sum"].get<double>() + j["predictions"]["off_diagonal_sum"].get<double>() ==
          doctest::Approx(3));
    CHECK(j["r2"]["layer2"]["min"].get<double>() == doctest::Approx(1));

    const std::vector<std::pair<std::string, std::string>> bad{
        {" --r2 " + tmp.file("x.csv"), "--source"},
        {" --source " + tmp.file("w0.safetensors") + " --r2 " + tmp.file("x.csv") + " --taps layer1,layer9", "--taps"},
        {"", "--predictions-stats"},
        {" --predictions-stats --num-classes 2", "--predictions-stats"},
    };
    for (const auto& [args, flag] : bad) {
      const auto e = run_command(base + args);
      INFO(args << "\n" << e.output);
      CHECK(e.code != 0);
      CHECK(contains(e.output, flag));
    }
  }
}
