// SPEC 5 and SPEC 2's feature rows through the built `tether` binary, on an ImageFolder of
// Fashion-MNIST PNGs at 28 px with a seeded resnet18 as w0: `tether attention` writes one
// tensor [C] per tap summing to C; `tether train --reg delta --attention FILE`, `--reg kd` and
// `--reg fnp` log "omega.features" (and "omega.head") every step; the CLI's errors name the
// flag, the file, the tap and both channel counts; `--reg delta` and `--reg fnp` runs equal the
// same runs written in PyTorch (SPEC 9, tests/parity/ref_train.py), the source network at w0
// while training starts from --init.
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "tests/parity/parity_util.h"
#include "tests/test_util.h"
#include "tests/train/fashion_folder.h"
#include "tests/tools/files.h"

using namespace tether;
using namespace tether::testing;

namespace {

const std::string kTether = "OMP_WAIT_POLICY=passive " TETHER_BINARY_DIR "/tether";
const std::string kPipeline =
    " --input-size 28 --augment none --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353 --threads 2 --workers 1";

struct Fixture {
  std::string data, w0, attention;
  RunResult made;  // the `tether attention` run that wrote `attention`
};

const Fixture& fixture() {
  static TempDir dir;
  static const Fixture f = [] {
    Fixture x{dir.file("fashion"), dir.file("w0.safetensors"), dir.file("att.safetensors"), {}};
    write_fashion_folder(x.data, 6, 2);
    manual_seed(3);
    auto model = models::create_model("resnet18", {3});
    std::map<std::string, Tensor> state;
    for (const auto& [n, t] : model->state_dict()) state.emplace(n, t);
    safetensors::save(x.w0, state, {});
    x.made = run_command(kTether + " attention --model resnet18 --weights " + x.w0 + " --data " + x.data + kPipeline +
                         " --batch-size 6 --att-epochs 2 --att-batches 1 --taps layer1,layer2 --seed 1 --attention " +
                         x.attention);
    return x;
  }();
  return f;
}

std::vector<nlohmann::json> read_log(const std::string& out) {
  std::vector<nlohmann::json> log;
  std::istringstream in(read_bytes(out + "/log.jsonl"));
  for (std::string line; std::getline(in, line);) log.push_back(nlohmann::json::parse(line));
  return log;
}

RunResult train(const std::string& out, const std::string& method) {
  const Fixture& f = fixture();
  return run_command(kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data + kPipeline +
                     " --batch-size 6 --iters 2 --lr 0.01 --seed 1 --log-interval 1 --eval-interval 1000" +
                     " --progress none --out " + out + " " + method);
}

// SPEC 9 with a feature row: `tether train --reg REG --init INIT` over 4 steps (crossing an
// epoch, BN running statistics; INIT = w0 + noise, so the features differ from the source
// network's, which stays at w0) against the same run written in PyTorch
// (tests/parity/ref_train.py REG); the penalty's share of the loss is printed and must matter.
void check_against_pytorch(const std::string& reg, const std::string& alpha) {
  const Fixture& f = fixture();
  const auto ref = parity::reference("ref_train.py", f.data + " 4 6 0.005 0.9 " + alpha + " 0.01 eval " + reg);
  if (!ref) return;
  TempDir tmp;
  std::map<std::string, Tensor> w0, att, init;
  for (const auto& [name, t] : ref->tensors()) {
    if (name.rfind("init.", 0) == 0) init.emplace(name.substr(5), t);
    if (name.rfind("w0.", 0) == 0) w0.emplace(name.substr(3), t);
    if (name.rfind("att.", 0) == 0) att.emplace(name.substr(4), t);
  }
  safetensors::save(tmp.file("w0.safetensors"), w0);
  safetensors::save(tmp.file("att.safetensors"), att);
  safetensors::save(tmp.file("init.safetensors"), init);
  const auto r = run_command(kTether + " train --model resnet18 --weights " + tmp.file("w0.safetensors") + " --data " +
                             f.data + kPipeline + " --shuffle none --batch-size 6 --iters 4 --optimizer sgd --lr 0.005" +
                             " --momentum 0.9 --reg " + reg + " --alpha " + alpha + " --beta 0.01 --bn eval --seed 0 --progress none --init " + tmp.file("init.safetensors") + " --log-interval 1 --out " + tmp.file("run") + "" +
                             (reg == "delta" ? " --attention " + tmp.file("att.safetensors") : std::string()) +
                             " --save-final " + tmp.file("final.safetensors"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto got = safetensors::load(tmp.file("final.safetensors"));
  REQUIRE(got.tensors.size() == w0.size());
  double worst = 0;
  for (const auto& [name, t] : got.tensors) {
    const auto a = t.to_vector<double>(), b = ref->at("final." + name).to_vector<double>();
    double scale = 0, diff = 0;
    for (size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::abs(b[i])), diff = std::max(diff, std::abs(a[i] - b[i]));
    INFO(name);
    CHECK(diff <= 1e-5 * std::max(scale, 1e-6));  // measured: 4e-7
    worst = std::max(worst, diff / std::max(scale, 1e-6));
  }
  std::istringstream log(read_bytes(tmp.file("run") + "/log.jsonl"));
  std::string line;
  REQUIRE(std::getline(log, line));
  const auto first = nlohmann::json::parse(line);
  MESSAGE("tether train --reg " << reg << " vs PyTorch, 4 steps: worst relative difference " << worst << "; step 1: J "
                                << first["J"] << ", omega.features " << first["omega.features"]);
  CHECK(first["omega.features"].get<double>() > 0.1 * first["J"].get<double>());
  CHECK(first["omega.features"].get<double>() < 10 * first["J"].get<double>());
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("SPEC 9: tether train --reg delta equals the same run written in PyTorch") { check_against_pytorch("delta", "0.002"); }
  TEST_CASE("SPEC 9: tether train --reg fnp equals the same run written in PyTorch") { check_against_pytorch("fnp", "0.02"); }

  TEST_CASE("tether attention (SPEC 5) writes one f32 tensor [C] per tap, summing to C") {
    const Fixture& f = fixture();
    INFO(f.made.output);
    REQUIRE(f.made.code == 0);
    const auto file = safetensors::load(f.attention);
    REQUIRE(file.tensors.size() == 2);
    for (const auto& [tap, c] : std::map<std::string, int64_t>{{"layer1", 64}, {"layer2", 128}}) {
      CAPTURE(tap);
      const Tensor& a = file.tensors.at(tap);
      CHECK(a.dtype() == DType::f32);
      REQUIRE(a.shape() == Shape{c});
      double sum = 0, lo = INFINITY, hi = 0;
      for (double v : a.to_vector<double>()) sum += v, lo = std::min(lo, v), hi = std::max(hi, v);
      CHECK(sum == doctest::Approx(static_cast<double>(c)).epsilon(1e-5));
      CHECK(lo > 0);
      CHECK(hi > lo);  // not uniform: the channels' loss increases differ
    }
    CHECK(file.metadata.at("model") == "resnet18");
    CHECK(file.metadata.at("taps") == "layer1,layer2");
  }

  TEST_CASE("tether train --reg delta, kd, fnp log omega.features and omega.head every step") {
    const Fixture& f = fixture();
    REQUIRE(f.made.code == 0);
    TempDir tmp;
    const std::string att = f.attention;
    for (const std::string& method : {"--reg delta --alpha 0.1 --beta 0.01 --taps layer1,layer2 --attention " + att,
                                     std::string("--reg kd --alpha 0.1 --beta 0.01"),
                                     std::string("--reg fnp --alpha 0.1 --beta 0.01")}) {
      CAPTURE(method);
      const std::string out = tmp.file("run" + std::to_string(method.size()));
      const auto t = train(out, method);
      INFO(t.output);
      REQUIRE(t.code == 0);
      const auto log = read_log(out);
      REQUIRE(log.size() == 2);
      for (const auto& rec : log) {
        REQUIRE(rec.contains("omega.features"));
        REQUIRE(rec.contains("omega.head"));
        CHECK(rec["omega.features"].get<double>() > 0);
        CHECK(rec["total"].get<double>() ==
              doctest::Approx(rec["J"].get<double>() + rec["omega.features"].get<double>() +
                              rec["omega.head"].get<double>()));
      }
    }
  }

  TEST_CASE("feature methods' CLI errors name the flag, the file, the tap and both channel counts") {
    const Fixture& f = fixture();
    TempDir tmp;
    const std::string att = tmp.file("att.safetensors");
    safetensors::save(att, {{"layer1", Tensor::ones({64})}, {"layer2", Tensor::ones({100})}}, {});
    auto r = train(tmp.file("a"), "--reg delta --alpha 0.1 --taps layer1,layer2 --attention " + att);
    CHECK(r.code == 1);
    CHECK(contains(r.output, att));
    CHECK(contains(r.output, "'layer2'"));
    CHECK(contains(r.output, "100"));
    CHECK(contains(r.output, "128"));
    r = train(tmp.file("b"), "--reg delta --alpha 0.1");
    CHECK(r.code == 1);
    CHECK(contains(r.output, "--attention"));
    r = train(tmp.file("c"), "--reg kd --alpha 0.1 --taps layer1,nolayer");
    CHECK(r.code == 1);
    CHECK(contains(r.output, "'nolayer'"));
    r = train(tmp.file("d"), "--reg l2sp --alpha 0.1 --taps layer1");
    CHECK(r.code == 1);
    CHECK(contains(r.output, "--taps"));
    r = run_command(kTether + " attention --model resnet18 --weights " + f.w0 + " --data " + f.data + kPipeline +
                    " --taps layer7 --attention " + tmp.file("x.safetensors"));
    CHECK(r.code == 1);
    CHECK(contains(r.output, "'layer7'"));
  }
}
