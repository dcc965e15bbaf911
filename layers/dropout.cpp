#include "layers/dropout.h"

namespace tether::nn {

Dropout::Dropout(double p) : p(p) { TETHER_CHECK(p >= 0 && p <= 1, "Dropout: p ", p, " outside [0, 1]"); }

StochasticDepth::StochasticDepth(double p) : p(p) {
  TETHER_CHECK(p >= 0 && p <= 1, "StochasticDepth: p ", p, " outside [0, 1]");
}

Tensor StochasticDepth::forward(const Tensor& x) {
  if (!training_ || p == 0.0) return x;
  const double survival = 1.0 - p;
  Shape noise_shape(x.dim(), 1);
  noise_shape[0] = x.size(0);
  Tensor noise = Tensor::empty(noise_shape, x.dtype(), x.device());
  ops::bernoulli_(noise, survival, default_generator());
  if (survival > 0.0) ops::scale_(noise, 1.0 / survival);
  return x * noise;  // noise is a constant: gradient x-side only
}

}  // namespace tether::nn
