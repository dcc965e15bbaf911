// SPEC 3 on a real fine-tuning run, through the built `tether` binary: an ImageFolder of PNGs
// cut from Debian's Fashion-MNIST, resnet18 at 28 px (the images' own size). A pretrained-like start w0 is made first
// (30 steps from scratch, --save-final); every run below fine-tunes from it.
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/safetensors.h"
#include "data/dataset.h"
#include "tests/test_util.h"
#include "tests/train/fine_tune_fixture.h"
#include "tests/tools/files.h"
#include "tools/train/run_files.h"

using namespace tether;
using namespace tether::testing;

namespace {

// SPEC 1 with --reg-params weights: S = every tensor of ndim >= 2 outside the head (fc.*).
bool in_S(const std::string& name, const Tensor& t) { return t.dim() >= 2 && name.rfind("fc.", 0) != 0; }

// Per tensor of S: ‖ΔW‖_F (rows = false) or max_r ‖Δ_r‖₁ (rows = true), recomputed in double
// from the saved final weights and w0.
std::map<std::string, double> distances(const std::string& final_weights, const std::string& w0_file, bool rows) {
  const auto w = safetensors::load(final_weights), w0 = safetensors::load(w0_file);
  std::map<std::string, double> out;
  for (const auto& [name, t] : w.tensors) {
    if (!in_S(name, t)) continue;
    const auto a = t.to_vector<double>(), b = w0.tensors.at(name).to_vector<double>();
    const size_t n_rows = rows ? static_cast<size_t>(t.shape()[0]) : 1, len = a.size() / n_rows;
    double worst = 0;
    for (size_t r = 0; r < n_rows; ++r) {
      double norm = 0;
      for (size_t i = r * len; i < (r + 1) * len; ++i) norm += rows ? std::abs(a[i] - b[i]) : (a[i] - b[i]) * (a[i] - b[i]);
      worst = std::max(worst, rows ? norm : std::sqrt(norm));
    }
    out[name] = worst;
  }
  CHECK(out.size() == 20);  // resnet18: conv1, 16 block convs, 3 downsample convs
  return out;
}

// Largest ‖ΔW‖_F / γ over the tensors of S (rows = false) or ‖Δ_r‖₁ / γ over their rows (rows = true).
double worst_ratio(const std::string& final_weights, const std::string& w0_file, bool rows, double gamma) {
  double worst = 0;
  for (const auto& [name, d] : distances(final_weights, w0_file, rows)) worst = std::max(worst, d / gamma);
  return worst;
}

// diagnostics.csv (regularizers/diagnostics.h), one row per tensor per diagnosed step.
struct DiagnosticsRow {
  int64_t step = 0;
  std::string layer, set;
  double frobenius = 0, mars = 0, radius = 0, ratio = 0;
  int active = 0;
  int64_t active_rows = 0;
};
std::vector<DiagnosticsRow> read_diagnostics(const Run& run) {
  std::istringstream in(read_bytes(run.out + "/diagnostics.csv"));
  std::string line;
  std::getline(in, line);
  CHECK(line == "step,epoch,layer,set,numel,rows,frobenius,mars,reference,radius,ratio,active,active_rows");
  std::vector<DiagnosticsRow> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, ',');) f.push_back(x);
    REQUIRE(f.size() == 13);
    rows.push_back({std::stoll(f[0]), f[2], f[3], std::stod(f[6]), std::stod(f[7]), std::stod(f[9]), std::stod(f[10]),
                    std::stoi(f[11]), std::stoll(f[12])});
  }
  return rows;
}

// The run's diagnostics, written after every step (--diag-interval 1): 21 tensors (S and
// fc.weight) at each of the 30 steps; under a projection, every tensor of S has ratio <= 1 +
// 1e-5 at every step (mars-pgm: the ratio is its largest row's, so every row of every layer);
// the last step's distances equal the ones recomputed from the saved weights. Returns the number
// of (step, tensor) pairs whose constraint was active.
int64_t check_diagnostics(const Run& run, const std::string& project, double gamma) {
  const auto rows = read_diagnostics(run);
  REQUIRE(rows.size() == 30 * 21);
  const auto frob = distances(run.final_weights, fixture().w0, false);
  const auto mars = distances(run.final_weights, fixture().w0, true);
  int64_t active = 0;
  for (const DiagnosticsRow& d : rows) {
    CAPTURE(d.step);
    CAPTURE(d.layer);
    CHECK(d.step == static_cast<int64_t>(&d - rows.data()) / 21 + 1);
    if (d.set == "head") continue;
    if (project == "none") {
      CHECK(std::isinf(d.radius));
      CHECK(d.ratio == 0);
    } else {
      CHECK(d.radius == doctest::Approx(gamma).epsilon(1e-9));
      CHECK(d.ratio == doctest::Approx((project == "l2-pgm" ? d.frobenius : d.mars) / gamma).epsilon(1e-6));
      CHECK(d.ratio <= 1 + 1e-5);  // SPEC 3
      CHECK(d.active == (d.ratio >= 1 - 1e-5));
      active += d.active;
    }
    if (d.step == 30) {
      CHECK(d.frobenius == doctest::Approx(frob.at(d.layer)).epsilon(1e-6));
      CHECK(d.mars == doctest::Approx(mars.at(d.layer)).epsilon(1e-6));
    }
  }
  return active;
}

// Every log step's "constraint" (SPEC 3: the max ratio after the projection): all <= 1 + 1e-5,
// returns the largest.
double check_logged_constraint(const Run& run) {
  double worst = 0;
  for (const auto& rec : run.log) {
    REQUIRE(rec.contains("constraint"));
    const double c = rec["constraint"].get<double>();
    CAPTURE(rec.dump());
    CHECK(c <= 1.0 + 1e-5);
    worst = std::max(worst, c);
  }
  return worst;
}

// Runs shared by the tests below, in one folder that lives as long as the process.
const TempDir& shared_dir() {
  static TempDir dir;
  return dir;
}

// The unconstrained run (its distance sets the radii below).
const Run& unconstrained() {
  static const Run run = fine_tune(shared_dir(), "none", "--reg none");
  return run;
}

// l2-pgm with γ per tensor a twentieth of what the 20 tensors of S would share of the free
// run's distance: it binds, and keeps the weights closer to w0 than l2sp with alpha 1.
double small_gamma() { return 0.05 * unconstrained().distance / std::sqrt(20.0); }
const Run& l2pgm_small() {
  static const Run run = fine_tune(shared_dir(), "l2pgm", "--project l2-pgm --gamma " + fmt(small_gamma()));
  return run;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("SPEC 3 l2-pgm on a fine-tuning run: ‖ΔW‖_F <= γ per tensor of S at every logged step and at the end") {
    const Run& free_run = unconstrained();
    CHECK(free_run.distance > 0);
    CHECK(!free_run.log[0].contains("constraint"));  // no projection, no field
    const double gamma = small_gamma();
    const Run& run = l2pgm_small();
    const double logged = check_logged_constraint(run);
    MESSAGE("l2-pgm γ=" << gamma << ": max logged constraint " << fmt(logged) << "; distance " << run.distance << " (free run " << free_run.distance << ")");
    CHECK(logged > 0.99);  // it binds: some tensor sits on the sphere
    const double final_ratio = worst_ratio(run.final_weights, fixture().w0, false, gamma);
    CHECK(final_ratio <= 1.0 + 1e-5);
    CHECK(final_ratio == doctest::Approx(run.log.back()["constraint"].get<double>()).epsilon(1e-5));
    CHECK(run.distance <= gamma * std::sqrt(20.0) * (1 + 1e-5));
    CHECK(check_diagnostics(run, "l2-pgm", gamma) > 0);
    const auto args = train::read_json(run.out + "/args.json");
    CHECK(args["project"] == "l2-pgm");
    CHECK(args["gamma-head"] == "inf");
  }

  TEST_CASE("SPEC 3 mars-pgm on a fine-tuning run: ‖Δ_r‖₁ <= γ on every row of S at every logged step and at the end") {
    const TempDir& tmp = shared_dir();
    const Run& free_run = unconstrained();
    const double free_rows = worst_ratio(free_run.final_weights, fixture().w0, true, 1.0);  // max row L1 of the free run
    const double gamma = 0.2 * free_rows;
    const Run run = fine_tune(tmp, "marspgm", "--project mars-pgm --gamma " + fmt(gamma));
    const double logged = check_logged_constraint(run);
    MESSAGE("mars-pgm γ=" << gamma << ": max logged constraint " << fmt(logged) << "; free run's max row L1 " << free_rows << "; distance " << run.distance);
    CHECK(logged > 0.99);
    const double final_ratio = worst_ratio(run.final_weights, fixture().w0, true, gamma);
    CHECK(final_ratio <= 1.0 + 1e-5);
    CHECK(final_ratio == doctest::Approx(run.log.back()["constraint"].get<double>()).epsilon(1e-5));
    CHECK(check_diagnostics(run, "mars-pgm", gamma) > 0);
    int64_t rows_at_limit = 0;
    for (const auto& d : read_diagnostics(run)) rows_at_limit += d.active_rows;
    CHECK(rows_at_limit > 0);
  }

  TEST_CASE("SPEC 2/3: weights stay closer to w0: l2sp (alpha 1) closer than none and l2 (alpha 1), l2-pgm with a small γ closer still") {
    const TempDir& tmp = shared_dir();
    const Run& free_run = unconstrained();
    const Run l2sp = fine_tune(tmp, "l2sp", "--reg l2sp --alpha 1");
    const Run l2 = fine_tune(tmp, "l2", "--reg l2 --alpha 1");  // same coefficient and lr, pulled toward 0
    const double gamma = small_gamma();
    const Run& pgm = l2pgm_small();
    MESSAGE("distance from w0: none " << free_run.distance << ", l2 " << l2.distance << ", l2sp " << l2sp.distance
                                      << ", l2-pgm γ=" << gamma << " " << pgm.distance);
    CHECK(l2sp.distance < free_run.distance);
    CHECK(l2sp.distance < l2.distance);
    check_diagnostics(free_run, "none", 0);
    CHECK(pgm.distance < l2sp.distance);
  }

  TEST_CASE("SPEC 3: a projection combined with a penalty (l2sp + mars-pgm, head constrained too) holds its constraint") {
    const TempDir& tmp = shared_dir();
    const Run& free_run = unconstrained();
    const double gamma = 0.2 * worst_ratio(free_run.final_weights, fixture().w0, true, 1.0);
    const double gamma_head = 0.5;
    const Run run = fine_tune(tmp, "l2sp-mars", "--reg l2sp --alpha 1 --beta 0.01 --project mars-pgm --gamma " +
                                                    fmt(gamma) + " --gamma-head " + fmt(gamma_head));
    CHECK(run.log.back().contains("omega.S"));
    const double logged = check_logged_constraint(run);
    MESSAGE("l2sp + mars-pgm γ=" << gamma << " γ_V=" << gamma_head << ": max logged constraint " << logged);
    CHECK(logged > 0.99);
    CHECK(worst_ratio(run.final_weights, fixture().w0, true, gamma) <= 1.0 + 1e-5);
    // The head's rows (fc.weight [3, 512], fc.bias is outside --reg-params weights): ‖v_r‖₁ <= γ_V.
    const auto w = safetensors::load(run.final_weights);
    const auto fc = w.tensors.at("fc.weight").to_vector<double>();
    double worst_head = 0;
    for (size_t r = 0; r < 3; ++r) {
      double l1 = 0;
      for (size_t i = r * 512; i < (r + 1) * 512; ++i) l1 += std::abs(fc[i]);
      worst_head = std::max(worst_head, l1 / gamma_head);
    }
    MESSAGE("head: max ‖v_r‖₁/γ_V = " << fmt(worst_head));
    CHECK(worst_head <= 1.0 + 1e-5);
    CHECK(worst_head > 0.99);  // γ_V binds
  }

  TEST_CASE("SPEC 3 flags: γ <= 0 names the flag, an unknown --project lists the valid ones, inf round-trips via --config") {
    TempDir tmp;
    const Fixture& f = fixture();
    const std::string base = kTether + " train --model resnet18 --data " + f.data +
                             " --input-size 28 --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353 --batch-size 6" +
                             " --threads 2 --workers 1 --progress none --iters 1 --out " + tmp.file("run");
    struct Case {
      std::string args, expect;
    };
    for (const Case& c : std::vector<Case>{{" --project l2-pgm --gamma 0", "--gamma must be > 0"},
                                           {" --project l2-pgm --gamma -2", "--gamma must be > 0"},
                                           {" --project mars-pgm --gamma-head 0", "--gamma-head"},
                                           {" --project l2-pgm --gamma nan", "--gamma"},
                                           {" --project l1-pgm", "none, l2-pgm, mars-pgm"},
                                           {" --freeze-blocks 10", "resnet18 has 9 blocks"}}) {
      CAPTURE(c.args);
      const auto r = run_command(base + c.args);
      INFO(r.output);
      CHECK(r.code != 0);
      CHECK(contains(r.output, c.expect));
      CHECK(!std::filesystem::exists(tmp.file("run") + "/last.state.json"));
    }
    // args.json writes an infinite radius as "inf", and --config reads it back.
    write_bytes(tmp.file("c.json"), R"({"project": "l2-pgm", "gamma": "inf", "gamma-head": 2.5})");
    const auto r = run_command(base + " --config " + tmp.file("c.json"));
    INFO(r.output);
    REQUIRE(r.code == 0);
    const auto args = train::read_json(tmp.file("run") + "/args.json");
    CHECK(args["project"] == "l2-pgm");
    CHECK(args["gamma"] == "inf");
    CHECK(args["gamma-head"] == 2.5);
  }

  TEST_CASE("--freeze-blocks 3 (resnet18: conv1+bn1, layer1.0, layer1.1) with --freeze layer4.1.conv2: frozen parameters and BN statistics never change, the rest trains") {
    TempDir tmp;
    const Run run = fine_tune(tmp, "frozen", "--freeze-blocks 3 --freeze layer4.1.conv2 --bn train");
    const auto w = safetensors::load(run.final_weights), w0 = safetensors::load(fixture().w0);
    int frozen = 0, trained = 0;
    for (const auto& [name, t] : w.tensors) {
      if (name.ends_with("num_batches_tracked")) continue;
      const bool is_frozen = name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 || name.rfind("layer1.", 0) == 0 ||
                             name.rfind("layer4.1.conv2.", 0) == 0;
      const bool same = t.to_vector<float>() == w0.tensors.at(name).to_vector<float>();
      CAPTURE(name);
      if (is_frozen) {
        CHECK(same);  // weights, BN affine and BN running statistics (frozen BN runs in eval mode)
        ++frozen;
      } else if (name.rfind("layer2.0.", 0) == 0) {
        CHECK(!same);  // trained parameters and batch-statistics BN both move
        ++trained;
      }
    }
    CHECK(frozen == 1 + 4 + 2 * (2 + 2 * 4) + 1);  // conv1, bn1 (4 tensors), layer1: 2 blocks of 2 convs + 2 BNs, layer4.1.conv2
    CHECK(trained > 0);
    const auto args = train::read_json(run.out + "/args.json");
    CHECK(args["freeze-blocks"] == 3);
    // Frozen tensors are in neither set: the diagnostics list 20 − 5 − 1 tensors of S.
    std::set<std::string> diagnosed;
    for (const auto& d : read_diagnostics(run))
      if (d.set == "S") diagnosed.insert(d.layer);
    CHECK(diagnosed.size() == 14);
    CHECK(!diagnosed.count("conv1.weight"));
    CHECK(!diagnosed.count("layer4.1.conv2.weight"));
  }

  TEST_CASE("tether eval --source-head: the fine-tuned backbone under the pretrained head, on the source task (L2-SP Table 5)") {
    TempDir tmp;
    const Fixture& f = fixture();
    const Run run = fine_tune(tmp, "target", "--classes 0,2");  // a 2-class target task, its own head
    const std::string eval = kTether + " eval --model resnet18 --data " + f.data +
                             " --input-size 28 --augment none --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353" +
                             " --threads 2 --workers 1 --weights ";
    const auto r = run_command(eval + run.final_weights + " --source-head " + f.w0);
    INFO(r.output);
    REQUIRE(r.code == 0);
    // Independently: a file holding the fine-tuned tensors with w0's head, evaluated plainly.
    auto tensors = safetensors::load(run.final_weights).tensors;
    const auto w0 = safetensors::load(f.w0).tensors;
    tensors["fc.weight"] = w0.at("fc.weight");
    tensors["fc.bias"] = w0.at("fc.bias");
    safetensors::save(tmp.file("combined.safetensors"), tensors);
    const auto combined = run_command(eval + tmp.file("combined.safetensors"));
    const auto pretrained = run_command(eval + f.w0);
    REQUIRE(combined.code == 0);
    REQUIRE(pretrained.code == 0);
    auto metrics = [](const std::string& text, const std::string& after) {
      const auto at = text.find(after);
      REQUIRE(at != std::string::npos);
      return text.substr(at + after.size(), text.find('\n', at) - at - after.size());
    };
    CHECK(metrics(r.output, "backbone under the source head: ") == metrics(combined.output, "centre crop): "));
    CHECK(metrics(r.output, f.w0 + ": ") == metrics(pretrained.output, "centre crop): "));
    CHECK(contains(r.output, "source-task top-1 drop after fine-tuning: "));
    // A weights file without a head for --source-head is named.
    auto headless = w0;
    headless.erase("fc.weight");
    safetensors::save(tmp.file("headless.safetensors"), headless);
    const auto bad = run_command(eval + run.final_weights + " --source-head " + tmp.file("headless.safetensors"));
    CHECK(bad.code != 0);
    CHECK(contains(bad.output, "has no head (fc.weight)"));
  }
}
