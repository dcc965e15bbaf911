// Finite-difference gradient check (float64): compares the autograd gradient of
// L = <v, f(inputs)> for a random projection v with central differences
// (L(x + eps e_j) - L(x - eps e_j)) / 2 eps, element by element, for every input.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tether {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;  // for the output projection v
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the worst mismatch: input, element index, analytic vs numeric
  double max_error = 0;  // max over elements of |analytic - numeric| / (atol + rtol |numeric|)
};

// `inputs` must be f64 tensors; those with requires_grad (contiguous, on the CPU or a GPU) are
// checked. `f` must be deterministic (seed any randomness inside it).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tether
