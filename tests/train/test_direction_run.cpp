// SPEC 6 (PtR) and SPEC 7 (DTNH) on real fine-tuning runs (tests/train/fine_tune_fixture.h:
// resnet18 at 28 px from a pretrained-like w0 on Fashion-MNIST PNGs, 30 steps, 6 per epoch),
// checked from the runs' log.jsonl.
#include <cmath>
#include <filesystem>

#include "core/safetensors.h"
#include "tests/test_util.h"
#include "tests/train/fine_tune_fixture.h"
#include "tests/tools/files.h"
#include "tools/train/run_files.h"

using namespace tether;
using namespace tether::testing;

namespace {

constexpr int kStepsPerEpoch = 6;  // 36 training images, batches of 6

double mean_j(const Run& run, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += run.log[i]["J"].get<double>();
  return s / static_cast<double>(to - from);
}

// The shared runs: l2sp with and without DTNH, plain SGD, and a pull strong enough (α = 60) that
// Ω's gradient is not negligible next to J's — the regime of the DTNH paper's Figure 3. Both runs
// see the same batches in the same order: the dataset's class-major order (--shuffle none), so
// each batch holds one class and J's gradient conflicts with Ω's on most steps. (With shuffled
// batches this small w0 trains too noisily for 30 steps to compare two runs' J.)
const std::string kSameBatches = " --augment none --shuffle none --lr 0.01 --momentum 0";
const TempDir& dir() {
  static TempDir d;
  return d;
}
const Run& l2sp() {
  static const Run run = fine_tune(dir(), "l2sp", "--reg l2sp --alpha 60", kSameBatches);
  return run;
}
const Run& dtnh_l2sp() {
  static const Run run = fine_tune(dir(), "dtnh-l2sp", "--reg l2sp --alpha 60 --dtnh", kSameBatches);
  return run;
}

}  // namespace

TEST_SUITE("train") {
  TEST_CASE("SPEC 7 on a run: corrected steps have ∠(d, g_J) + ∠(d, g_Ω') = 90°, uncorrected ones log the plain sum's angles; the rate is the running mean") {
    const Run& run = dtnh_l2sp();
    int corrected = 0;
    double sum = 0;
    for (size_t i = 0; i < run.log.size(); ++i) {
      const auto& rec = run.log[i];
      CAPTURE(rec.dump());
      const double a1 = rec["dtnh.angle1"], a2 = rec["dtnh.angle2"], a3 = rec["dtnh.angle3"], a4 = rec["dtnh.angle4"];
      const double c = rec["dtnh.corrected"];
      if (c == 1.0) {
        ++corrected;
        CHECK(a1 + a2 == doctest::Approx(90.0).epsilon(1e-6));  // g_Ω' ⟂ g_J and d = g_J + g_Ω'
      } else {
        CHECK(c == 0.0);
        CHECK(a1 == a3);
        CHECK(a2 == a4);
      }
      sum += c;
      CHECK(rec["dtnh.correction_rate"].get<double>() == doctest::Approx(sum / static_cast<double>(i + 1)).epsilon(1e-12));
    }
    MESSAGE("DTNH(l2sp): " << corrected << " of 30 steps corrected");
    CHECK(corrected > 0);
    CHECK(corrected < 30);
  }

  TEST_CASE("SPEC 7 (the DTNH paper's Figure 3): DTNH(l2sp) reaches a lower training cross-entropy than l2sp with the same settings") {
    const Run& plain = l2sp();
    const Run& dtnh = dtnh_l2sp();
    // The first step is the same in both (the correction applies to its update, not its loss).
    CHECK(dtnh.log[0]["J"].get<double>() == plain.log[0]["J"].get<double>());
    // Every epoch after the first: a lower mean J.
    for (size_t e = 1; e < 5; ++e) {
      const double j_plain = mean_j(plain, 6 * e, 6 * e + 6), j_dtnh = mean_j(dtnh, 6 * e, 6 * e + 6);
      MESSAGE("epoch " << e << " mean J: l2sp " << j_plain << ", DTNH(l2sp) " << j_dtnh);
      CHECK(j_dtnh < j_plain);
    }
  }

  TEST_CASE("SPEC 7: --dtnh-scope tensor corrects per tensor (fractions between 0 and 1); --dtnh without a penalty is an error") {
    TempDir tmp;
    const Run run = fine_tune(tmp, "tensor", "--reg l2sp --alpha 1 --dtnh --dtnh-scope tensor");
    bool partial = false;
    for (const auto& rec : run.log) {
      const double c = rec["dtnh.corrected"];
      CHECK(c >= 0.0);
      CHECK(c <= 1.0);
      partial = partial || (c > 0 && c < 1);
    }
    CHECK(partial);
    const auto r = run_command(kTether + " train --model resnet18 --data " + fixture().data +
                               " --input-size 28 --iters 1 --batch-size 6 --progress none --dtnh --project l2-pgm --gamma 1");
    CHECK(r.code != 0);
    CHECK(contains(r.output, "--dtnh corrects a penalty's gradient: give --reg"));
  }

  TEST_CASE("SPEC 6 on a run: w = mean G_ce / (mean G_ptr · R) at every step; the switch follows the epochs' mean CE") {
    TempDir tmp;
    const Run always = fine_tune(tmp, "always", "--ptr --ptr-threshold inf --ptr-ratio 3");
    for (const auto& rec : always.log) {
      CAPTURE(rec.dump());
      REQUIRE(rec["ptr.active"] == true);
      const double w = rec["ptr.w"], g_ce = rec["ptr.g_ce"], g_ptr = rec["ptr.g_ptr"];
      CHECK(w > 0);
      CHECK(w == doctest::Approx(g_ce / (g_ptr * 3.0)).epsilon(1e-12));
      // The logged total is J + w·L_ptr.
      CHECK(rec["total"].get<double>() ==
            doctest::Approx(rec["J"].get<double>() + w * rec["ptr.loss"].get<double>()).epsilon(1e-5));
    }
    // T between the epochs' mean CEs of a run: the flag must follow SPEC 6's rule exactly.
    for (const double threshold : {1e9, 1e-9, 0.3}) {
      CAPTURE(threshold);
      const Run run = fine_tune(tmp, "switch" + std::to_string(threshold), "--ptr --ptr-threshold " + fmt(threshold));
      bool on = false;
      for (int e = 0; e < 5; ++e) {
        for (int k = 0; k < kStepsPerEpoch; ++k) {
          const auto& rec = run.log[static_cast<size_t>(e * kStepsPerEpoch + k)];
          CHECK(rec["ptr.active"].get<bool>() == on);
          CHECK(rec.contains("ptr.w") == on);
        }
        on = on || mean_j(run, static_cast<size_t>(e * kStepsPerEpoch), static_cast<size_t>((e + 1) * kStepsPerEpoch)) < threshold;
      }
      if (threshold == 1e9) CHECK(run.log[6]["ptr.active"] == true);  // on from the second epoch
      if (threshold == 1e-9) CHECK(run.log[29]["ptr.active"] == false);
    }
  }

  TEST_CASE("SPEC 6/7 resume: PtR + DTNH(l2sp) stopped at step 10 and resumed ends on the same weights, bit for bit") {
    TempDir tmp;
    const std::string method = " --reg l2sp --alpha 1 --dtnh --ptr --ptr-threshold 1e9";
    const Run whole = fine_tune(tmp, "whole", method);
    const Fixture& f = fixture();
    const std::string out = tmp.file("parts");
    const std::string base = kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data +
                             " --input-size 28 --augment flip --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353" +
                             " --batch-size 6 --iters 30 --lr 0.05 --momentum 0.9 --threads 2 --workers 1 --seed 3" +
                             " --log-interval 1 --diag-interval 1 --eval-interval 1000 --progress none" + method;
    const auto first = run_command(base + " --out " + out + " --stop-after 10");
    INFO(first.output);
    REQUIRE(first.code == 130);
    const auto second = run_command(kTether + " train --resume " + out + " --save-final " + tmp.file("parts.safetensors"));
    INFO(second.output);
    REQUIRE(second.code == 0);
    const auto a = safetensors::load(whole.final_weights), b = safetensors::load(tmp.file("parts.safetensors"));
    for (const auto& [name, t] : a.tensors) {
      CAPTURE(name);
      CHECK(t.to_vector<double>() == b.tensors.at(name).to_vector<double>());
    }
    CHECK(read_bytes(out + "/log.jsonl") == read_bytes(whole.out + "/log.jsonl"));
  }

  TEST_CASE("SPEC 7 with a feature penalty and PtR: DTNH(kd) takes g_Ω from kd's graph (two gradients on one graph), PtR's term in g_J") {
    TempDir tmp;
    const Run run = fine_tune(tmp, "dtnh-kd", "--reg kd --alpha 1 --dtnh --ptr --ptr-threshold inf");
    int corrected = 0;
    for (const auto& rec : run.log) {
      CAPTURE(rec.dump());
      REQUIRE(rec.contains("omega.features"));
      REQUIRE(rec.contains("ptr.w"));
      const double a1 = rec["dtnh.angle1"], a2 = rec["dtnh.angle2"], a3 = rec["dtnh.angle3"], a4 = rec["dtnh.angle4"];
      if (rec["dtnh.corrected"] == 1.0) {
        ++corrected;
        CHECK(a1 + a2 == doctest::Approx(90.0).epsilon(1e-6));
      } else {
        CHECK(a1 == a3);
        CHECK(a2 == a4);
      }
      CHECK(rec["total"].get<double>() ==
            doctest::Approx(rec["J"].get<double>() + rec["ptr.w"].get<double>() * rec["ptr.loss"].get<double>() +
                            rec["omega.features"].get<double>())
                .epsilon(1e-5));
    }
    // kd > 0 from the first step (the model's BN uses batch statistics, the source network its running ones).
    CHECK(run.log[0]["omega.features"].get<double>() > 0.0);
    MESSAGE("DTNH(kd) + PtR: " << corrected << " of 30 steps corrected");
    CHECK(corrected > 0);
  }

  TEST_CASE("SPEC 7 with Adam: the optimizer receives d (corrected steps keep ∠1 + ∠2 = 90°); the progress line shows the method's values") {
    TempDir tmp;
    const Run run = fine_tune(tmp, "adam", "--reg l2sp --alpha 1 --dtnh --ptr --ptr-threshold inf --progress plain",
                              " --augment flip --optimizer adam --lr 0.001");
    int corrected = 0;
    for (const auto& rec : run.log)
      if (rec["dtnh.corrected"] == 1.0) {
        ++corrected;
        CHECK(rec["dtnh.angle1"].get<double>() + rec["dtnh.angle2"].get<double>() == doctest::Approx(90.0).epsilon(1e-6));
      }
    CHECK(corrected > 0);
    const auto args = train::read_json(run.out + "/args.json");
    CHECK(args["optimizer"] == "adam");
    CHECK(contains(run.output, "omega.S "));
    CHECK(contains(run.output, "ptr w "));
    CHECK(contains(run.output, "dtnh ∠(d,gJ) "));
  }
}
