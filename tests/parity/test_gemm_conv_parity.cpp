// matmul, linear and conv2d against PyTorch (f32): outputs and the gradients of every input,
// on the shapes of ref_gemm_conv.py (NumPy matmul kinds with broadcasting; linear with and
// without bias; conv2d with groups, depthwise, stride 2, dilation, 1x1, a 7x7 stem, and
// random configurations).
// Tolerance: |got - want| <= atol + rtol |want| with rtol = 1e-4 and atol = 1e-4 x the RMS of
// the reference quantity. Both sides sum in float, in different orders and blockings, so
// the error of an entry scales with the size of the summed terms, not with the entry (which
// may be near 0): hence an absolute part scaled to the quantity. Observed worst ratio with
// these tolerances: ~0.03 (conv weight gradients summing 1568 x 576 products); all cases
// still pass at 1e-5.
#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

constexpr double kTol = 1e-4;

double rms(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double s = 0;
  for (double e : v) s += e * e;
  return v.empty() ? 0.0 : std::sqrt(s / static_cast<double>(v.size()));
}

void expect_close(const std::string& what, const Tensor& got, const Tensor& want) {
  parity::expect_close(what, got, want, kTol, kTol * std::max(rms(want), 1e-6));
}

// Compares y and the gradients of `inputs` (short names, as written by the script).
void check_case(const parity::Reference& ref, const std::string& name, const Tensor& y,
                const std::vector<std::pair<std::string, Tensor>>& inputs) {
  expect_close(name + " value", y, ref.at(name + ".out"));
  std::vector<Tensor> leaves;
  for (const auto& in : inputs) leaves.push_back(in.second);
  const std::vector<Tensor> g = grad({y}, leaves, {ref.at(name + ".v")});
  for (size_t i = 0; i < inputs.size(); ++i)
    expect_close(name + " grad_" + inputs[i].first, g[i], ref.at(name + ".grad_" + inputs[i].first));
}

Tensor input(const parity::Reference& ref, const std::string& key) { return ref.at(key).clone().set_requires_grad(); }

}  // namespace

TEST_SUITE("parity") {
  TEST_CASE("matmul matches PyTorch (values and gradients)") {
    auto ref = parity::reference("ref_gemm_conv.py");
    if (!ref) return;
    int cases = 0;
    for (int i = 0; ref->has("matmul." + std::to_string(i) + ".a"); ++i, ++cases) {
      const std::string name = "matmul." + std::to_string(i);
      Tensor a = input(*ref, name + ".a"), b = input(*ref, name + ".b");
      INFO(name << ": " << shape_str(a.shape()) << " x " << shape_str(b.shape()));
      check_case(*ref, name, matmul(a, b), {{"a", a}, {"b", b}});
    }
    CHECK(cases == 17);
  }

  TEST_CASE("linear matches PyTorch (with and without bias)") {
    auto ref = parity::reference("ref_gemm_conv.py");
    if (!ref) return;
    int cases = 0;
    for (int i = 0; ref->has("linear." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "linear." + std::to_string(i);
      Tensor x = input(*ref, name + ".x"), w = input(*ref, name + ".w");
      INFO(name << ": x " << shape_str(x.shape()) << ", w " << shape_str(w.shape()));
      if (ref->has(name + ".b")) {
        Tensor b = input(*ref, name + ".b");
        check_case(*ref, name, linear(x, w, b), {{"x", x}, {"w", w}, {"b", b}});
      } else {
        check_case(*ref, name, linear(x, w), {{"x", x}, {"w", w}});
      }
    }
    CHECK(cases == 6);
  }

  TEST_CASE("conv2d matches PyTorch (groups, depthwise, stride, dilation, bias)") {
    auto ref = parity::reference("ref_gemm_conv.py");
    if (!ref) return;
    int cases = 0;
    for (int i = 0; ref->has("conv2d." + std::to_string(i) + ".x"); ++i, ++cases) {
      const std::string name = "conv2d." + std::to_string(i);
      const std::vector<int64_t> v = ref->at(name + ".params").to_vector<int64_t>();
      REQUIRE(v.size() == 7);
      Conv2dParams p;
      p.stride = {v[0], v[1]};
      p.padding = {v[2], v[3]};
      p.dilation = {v[4], v[5]};
      p.groups = v[6];
      Tensor x = input(*ref, name + ".x"), w = input(*ref, name + ".w");
      INFO(name << ": x " << shape_str(x.shape()) << ", w " << shape_str(w.shape()) << ", stride " << v[0] << "x"
                << v[1] << ", padding " << v[2] << "x" << v[3] << ", dilation " << v[4] << "x" << v[5] << ", groups "
                << v[6]);
      if (ref->has(name + ".b")) {
        Tensor b = input(*ref, name + ".b");
        check_case(*ref, name, conv2d(x, w, b, p), {{"x", x}, {"w", w}, {"b", b}});
      } else {
        check_case(*ref, name, conv2d(x, w, Tensor(), p), {{"x", x}, {"w", w}});
      }
    }
    CHECK(cases == 20);
  }
}
