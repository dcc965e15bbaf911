// Whole fine-tuning runs on the GPU against the same runs on the CPU (the fixture of the run
// tests: resnet18 at 28 px, 30 steps from w0, every step logged). Strict float32 (--tf32 none)
// and BN on running statistics (--bn eval: train-mode BN over batches of 6 amplifies rounding by
// orders of magnitude within a few steps, in PyTorch too — see README, Testing), so the two
// devices differ by float rounding only: the first steps' losses agree closely, the paths then
// drift apart slowly, and the methods' guarantees hold on the GPU's own run (the projections'
// constraints, DTNH's angle relation). Train-mode BN on the GPU is covered by the model tests.
// Without a GPU every case says so and passes.
#include <doctest/doctest.h>

#include <cmath>
#include <iostream>

#include "core/device.h"
#include "tests/train/fine_tune_fixture.h"

namespace tether::testing {
namespace {

bool have_gpu() {
  if (cuda_available()) return true;
  MESSAGE("skipped: no CUDA device (this build or machine has none; tools/gpu-check.sh runs these on a GPU)");
  std::cerr << "[cuda] skipped: no CUDA device\n";
  return false;
}

const std::string kOnGpu = " --device cuda --tf32 none";
const std::string kOnCpu = "";
// BN on running statistics is less forgiving of the fixture's weak w0 (30 steps from scratch):
// a smaller learning rate keeps every method finite for the 30 steps.
const std::string kTraining = " --augment flip --lr 0.01 --momentum 0.9 --bn eval";

// J at step k on both devices: close for the first steps, where rounding has not yet grown.
void check_same_start(const Run& cpu, const Run& gpu, int steps, double rtol) {
  for (int k = 0; k < steps; ++k) {
    const double a = cpu.log[k]["J"], b = gpu.log[k]["J"];
    INFO("step " << k + 1 << ": J cpu " << a << ", cuda " << b);
    CHECK(std::abs(a - b) <= rtol * std::abs(a));
  }
}

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("fine-tuning on the GPU follows the CPU run: none, l2sp, l1sp, glsp, mars-sp, fnp, kd, adam") {
    if (!have_gpu()) return;
    TempDir tmp;
    const std::vector<std::pair<std::string, std::string>> methods = {
        {"none", ""},
        {"l2sp", "--reg l2sp --alpha 0.1 --beta 0.01"},
        {"l1sp", "--reg l1sp --alpha 1e-3 --beta 0.01"},
        {"glsp", "--reg glsp --alpha 1e-3 --beta 0.01"},
        {"marssp", "--reg mars-sp --alpha 0.01 --beta 1e-4"},
        {"fnp", "--reg fnp --alpha 0.01 --beta 0.01"},
        {"kd", "--reg kd --alpha 0.01 --beta 0.01"},
        {"adam", "--reg l2sp --alpha 0.1 --beta 0.01 --optimizer adam --lr 1e-3"},
    };
    for (const auto& [name, flags] : methods) {
      CAPTURE(name);
      const Run cpu = fine_tune(tmp, name + "-cpu", flags + kOnCpu, kTraining);
      const Run gpu = fine_tune(tmp, name + "-cuda", flags + kOnGpu, kTraining);
      check_same_start(cpu, gpu, 5, 1e-3);
      // Thirty steps later: the same neighbourhood of w0 (rounding only, no systematic drift).
      CHECK(std::abs(cpu.distance - gpu.distance) <= 0.05 * cpu.distance + 1e-6);
      for (const char* part : {"omega.S", "omega.head", "omega.features"})
        if (cpu.log[0].contains(part)) {
          INFO(part);
          CHECK(std::abs(cpu.log[0][part].get<double>() - gpu.log[0][part].get<double>()) <=
                1e-4 * std::abs(cpu.log[0][part].get<double>()) + 1e-9);
        }
    }
  }

  TEST_CASE("projections on the GPU: every row of l2-pgm and mars-pgm within its radius at every step") {
    if (!have_gpu()) return;
    TempDir tmp;
    for (const std::string projection : {"l2-pgm --gamma 0.05 --gamma-head 0.5", "mars-pgm --gamma 0.2 --gamma-head 2"}) {
      CAPTURE(projection);
      const Run gpu = fine_tune(tmp, projection.substr(0, 4), "--project " + projection + kOnGpu, kTraining);
      const Run cpu = fine_tune(tmp, projection.substr(0, 4) + "-cpu", "--project " + projection + kOnCpu, kTraining);
      check_same_start(cpu, gpu, 3, 1e-3);
      for (const auto& rec : gpu.log) {
        REQUIRE(rec.contains("constraint"));
        CHECK(rec["constraint"].get<double>() <= 1.0 + 1e-5);
      }
    }
  }

  TEST_CASE("DTNH and PtR on the GPU: corrected steps are at 90 degrees; the same first steps as the CPU") {
    if (!have_gpu()) return;
    TempDir tmp;
    const Run gpu = fine_tune(tmp, "dtnh", "--reg l2sp --alpha 60 --beta 0.01 --dtnh" + kOnGpu, kTraining);
    const Run cpu = fine_tune(tmp, "dtnh-cpu", "--reg l2sp --alpha 60 --beta 0.01 --dtnh" + kOnCpu, kTraining);
    check_same_start(cpu, gpu, 3, 1e-3);
    int corrected = 0;
    for (const auto& rec : gpu.log)
      if (rec["dtnh.corrected"].get<double>() > 0) {
        ++corrected;
        CHECK(rec["dtnh.angle1"].get<double>() + rec["dtnh.angle2"].get<double>() == doctest::Approx(90.0).epsilon(1e-3));
      }
    CHECK(corrected > 0);
    const Run ptr_gpu = fine_tune(tmp, "ptr", "--ptr --ptr-threshold inf" + kOnGpu, kTraining);
    const Run ptr_cpu = fine_tune(tmp, "ptr-cpu", "--ptr --ptr-threshold inf" + kOnCpu, kTraining);
    check_same_start(ptr_cpu, ptr_gpu, 3, 1e-3);
    CHECK(ptr_gpu.log[0]["ptr.w"].get<double>() == doctest::Approx(ptr_cpu.log[0]["ptr.w"].get<double>()).epsilon(1e-3));
  }

  TEST_CASE("--device errors name the flag: a bad name, and (without a GPU) what is missing") {
    TempDir tmp;
    const Fixture& f = fixture();
    const auto bad = run_command(kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data +
                                 " --iters 1 --input-size 28 --progress none --device gpu0");
    CHECK(bad.code != 0);
    CHECK(bad.output.find("--device") != std::string::npos);
    if (!cuda_available()) {
      const auto none = run_command(kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data +
                                    " --iters 1 --input-size 28 --progress none --device cuda");
      CHECK(none.code != 0);
      CHECK(none.output.find("--device cuda") != std::string::npos);
    } else {
      const auto beyond = run_command(kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data +
                                      " --iters 1 --input-size 28 --progress none --device cuda:99");
      CHECK(beyond.code != 0);
      CHECK(beyond.output.find("cuda:99") != std::string::npos);
    }
  }
}

}  // namespace tether::testing
