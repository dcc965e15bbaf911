#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace tether {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<Tensor> checked;
  for (const Tensor& t : inputs) {
    TETHER_CHECK(t.dtype() == DType::f64 || !t.requires_grad(), "gradcheck: input ", t.str(), " must be f64");
    if (t.requires_grad()) {
      TETHER_CHECK(t.is_contiguous(), "gradcheck: inputs must be contiguous tensors");
      checked.push_back(t);
    }
  }
  TETHER_CHECK(!checked.empty(), "gradcheck: no input requires grad");

  // Analytic gradients of <v, f(x)>.
  Tensor y = f(inputs);
  Generator gen(options.seed);
  Tensor v = Tensor::empty(y.shape(), DType::f64, y.device());
  ops::normal_(v, 0.0, 1.0, gen);
  std::vector<Tensor> analytic = grad({y}, checked, {v}, /*retain_graph=*/false, /*allow_unused=*/true);

  auto projected = [&]() {
    NoGradGuard no_grad;
    return ops::dot(f(inputs), v);
  };

  GradcheckResult result;
  for (size_t k = 0; k < checked.size(); ++k) {
    const Tensor& input = checked[k];
    const std::vector<double> x = input.to_vector<double>();
    // Element j as a 0-d view, written in place on the input's device (CPU or CUDA).
    auto set = [&](int64_t j, double value) { make_view(input, {}, {}, input.offset() + j).fill_(value); };
    std::vector<double> a = analytic[k].defined() ? analytic[k].to_vector<double>()
                                                  : std::vector<double>(input.numel(), 0.0);
    for (int64_t j = 0; j < input.numel(); ++j) {
      set(j, x[j] + options.eps);
      const double plus = projected();
      set(j, x[j] - options.eps);
      const double minus = projected();
      set(j, x[j]);
      const double numeric = (plus - minus) / (2 * options.eps);
      const double err = std::abs(a[j] - numeric) / (options.atol + options.rtol * std::abs(numeric));
      if (!(err <= result.max_error)) {  // also catches NaN
        result.max_error = std::isnan(err) ? INFINITY : err;
        std::ostringstream os;
        os.precision(10);
        os << "input " << k << " " << input.str() << " element " << j << ": analytic " << a[j]
           << " vs numeric " << numeric;
        result.message = os.str();
      }
    }
  }
  result.ok = result.max_error <= 1.0;
  return result;
}

}  // namespace tether
