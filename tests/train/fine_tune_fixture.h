// Test helper for the run tests of the methods (tests/train/test_*_run.cpp): an ImageFolder of
// PNGs cut from Debian's Fashion-MNIST, a pretrained-like start w0 (resnet18 at 28 px, 30 steps
// from scratch, --save-final), and fine_tune(): a 30-step run from w0 through the built `tether`
// binary, its log read back.
#pragma once
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/tools/files.h"
#include "tests/train/fashion_folder.h"

namespace tether::testing {

// OpenMP's passive wait: on a busy machine (parallel builds) spinning threads make a 2-thread
// run ~7x slower; results do not depend on it.
inline const std::string kTether = "OMP_WAIT_POLICY=passive " TETHER_BINARY_DIR "/tether";

struct Fixture {
  std::string data, w0;
};

// The data and w0, made once for the file: 36 training images (6 batches of 6 per epoch).
inline const Fixture& fixture() {
  static TempDir dir;
  static const Fixture f = [] {
    Fixture x{dir.file("fashion"), dir.file("w0.safetensors")};
    write_fashion_folder(x.data, 12, 2);
    const auto r = run_command(kTether + " train --model resnet18 --data " + x.data +
                               " --input-size 28 --augment none --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353" +
                               " --batch-size 6 --iters 30 --lr 0.05 --momentum 0.9 --threads 2 --workers 1 --seed 1" +
                               " --progress none --save-final " + x.w0);
    INFO(r.output);
    REQUIRE(r.code == 0);
    return x;
  }();
  return f;
}

// A fine-tuning run from w0: 30 steps (SGD lr 0.05 momentum 0.9), logging every step.
struct Run {
  std::string out, final_weights, output;
  double distance = NAN;  // "distance from w0" printed by tether train (‖w − w0‖ over S)
  std::vector<nlohmann::json> log;
};

// The optimisation of a fine-tuning run unless a test gives its own.
inline const std::string kDefaultTraining = " --augment flip --lr 0.05 --momentum 0.9";

inline Run fine_tune(const TempDir& tmp, const std::string& name, const std::string& method,
                     const std::string& training = kDefaultTraining) {
  const Fixture& f = fixture();
  Run run;
  run.out = tmp.file(name);
  run.final_weights = tmp.file(name + ".safetensors");
  const auto r = run_command(kTether + " train --model resnet18 --weights " + f.w0 + " --data " + f.data + training +
                             " --input-size 28 --mean 0.286,0.286,0.286 --std 0.353,0.353,0.353" +
                             " --batch-size 6 --iters 30 --threads 2 --workers 1 --seed 3" +
                             " --log-interval 1 --diag-interval 1 --eval-interval 1000 --progress none --out " + run.out +
                             " --save-final " + run.final_weights + " " + method);
  INFO(r.output);
  REQUIRE(r.code == 0);
  run.output = r.output;
  const auto at = r.output.find("distance from w0 ");
  REQUIRE(at != std::string::npos);
  run.distance = std::stod(r.output.substr(at + 17));
  std::istringstream in(read_bytes(run.out + "/log.jsonl"));
  for (std::string line; std::getline(in, line);) run.log.push_back(nlohmann::json::parse(line));
  REQUIRE(run.log.size() == 30);
  return run;
}

// A radius as a flag value that parses back to exactly the same double.
inline std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace tether::testing
