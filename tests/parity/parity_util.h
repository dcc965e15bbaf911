// PyTorch parity tests: each tests/parity/ref_*.py script (run with Debian's torch through
// /usr/bin/python3, or the interpreter named by $TETHER_PYTHON, as on a GPU machine whose
// PyTorch lives elsewhere) writes inputs and PyTorch's results to a safetensors file; the C++
// test recomputes them with tether and compares with a stated tolerance.
//
//   auto ref = tether::parity::reference("ref_elementwise.py");
//   if (!ref) return;                       // torch absent: a visible SKIP message was printed
//   const Tensor& x = ref->at("add.a");     // tensors by name (throws naming a missing key)
//   tether::parity::expect_close("add", got, ref->at("add.out"), 1e-6, 1e-6);
#pragma once
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/safetensors.h"
#include "tests/test_util.h"

namespace tether::parity {

class Reference {
 public:
  explicit Reference(safetensors::File file) : file_(std::move(file)) {}
  const Tensor& at(const std::string& name) const {
    auto it = file_.tensors.find(name);
    TETHER_CHECK(it != file_.tensors.end(), "parity reference has no tensor '", name, "'");
    return it->second;
  }
  bool has(const std::string& name) const { return file_.tensors.count(name) > 0; }
  const std::map<std::string, Tensor>& tensors() const { return file_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return file_.metadata; }

 private:
  safetensors::File file_;
};

// The interpreter that runs the reference scripts: $TETHER_PYTHON, else /usr/bin/python3.
inline std::string python() {
  const char* env = std::getenv("TETHER_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

inline bool torch_available() {
  static const bool available = [] {
    std::string cmd = "'";
    cmd += python();
    cmd += "' -c 'import torch' >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }();
  return available;
}

// Runs tests/parity/<script> [args] once per test process (results are cached) and loads
// its output. Returns nullopt, with a visible SKIP message, when python() has no torch.
inline std::optional<Reference> reference(const std::string& script, const std::string& args = "") {
  static std::map<std::string, std::shared_ptr<Reference>> cache;
  if (!torch_available()) {
    MESSAGE("SKIP parity " << script << ": " << python() << " cannot import torch (apt-get install python3-torch)");
    std::cerr << "SKIP parity " << script << ": " << python() << " cannot import torch\n";
    return std::nullopt;
  }
  const std::string key = script + " " + args;
  if (auto it = cache.find(key); it != cache.end()) return *it->second;
  char dir[] = "/tmp/tether-parity-XXXXXX";
  TETHER_CHECK(mkdtemp(dir) != nullptr, "cannot create a temporary folder for parity references");
  const std::string out = std::string(dir) + "/" + script + ".safetensors";
  const std::string cmd = "cd '" TETHER_SOURCE_DIR "/tests/parity' && OMP_NUM_THREADS=1 '" + python() + "' '" +
                          script + "' '" + out + "' " + args;
  const int rc = std::system(cmd.c_str());
  TETHER_CHECK(rc == 0, "parity reference script failed (exit ", rc, "): ", cmd);
  auto ref = std::make_shared<Reference>(safetensors::load(out));
  std::remove(out.c_str());
  rmdir(dir);
  cache[key] = ref;
  return *ref;
}

// Checks |got - want| <= atol + rtol |want| elementwise, naming the quantity on failure.
inline void expect_close(const std::string& what, const Tensor& got, const Tensor& want, double rtol, double atol) {
  INFO(what << ": got " << got.str() << ", want " << want.str());
  REQUIRE(got.shape() == want.shape());
  const double ratio = testing::close_ratio(got, want, rtol, atol);
  INFO(what << ": worst |got - want| / (atol + rtol |want|) = " << ratio << " (rtol " << rtol << ", atol " << atol << ")");
  CHECK(ratio <= 1.0);
}

}  // namespace tether::parity
