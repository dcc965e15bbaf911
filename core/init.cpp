// torch.nn.init on tether's Generator: fan and gain rules, then one random fill
// (ops::uniform_ / ops::normal_) per initialiser. See core/init.h.
#include "core/init.h"

#include <cmath>
#include <limits>

#include "core/ops.h"

namespace tether::init {

namespace {

// The random fills need contiguous memory: fill a temporary and copy when `t` is a strided view.
template <typename Fill>
Tensor fill_random(const Tensor& t, const char* name, Fill fill) {
  TETHER_CHECK(t.defined(), "init::", name, ": undefined tensor");
  TETHER_CHECK(is_floating(t.dtype()), "init::", name, ": expected a floating tensor, got ", t.str());
  if (t.numel() == 0) return t;  // PyTorch: "Initializing zero-element tensors is a no-op"
  if (t.is_contiguous()) {
    fill(t);
    return t;
  }
  Tensor tmp = Tensor::empty(t.shape(), t.dtype(), t.device());
  fill(tmp);
  ops::copy_(t, tmp);
  return t;
}

int64_t fan_for(const Tensor& t, FanMode mode) {
  const Fans f = calculate_fan_in_and_fan_out(t.shape());
  return mode == FanMode::fan_in ? f.fan_in : f.fan_out;
}

double normal_cdf(double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Inverse error function on [-1, 1]: Giles' single-precision approximation ("Approximating
// the erfinv function", GPU Computing Gems, 2011), refined by two Newton steps on erf.
double erfinv(double y) {
  if (y <= -1.0) return -std::numeric_limits<double>::infinity();
  if (y >= 1.0) return std::numeric_limits<double>::infinity();
  double w = -std::log((1.0 - y) * (1.0 + y)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
  }
  double x = p * y;
  const double two_over_sqrt_pi = 2.0 / std::sqrt(M_PI);
  for (int i = 0; i < 2; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return x;
}

}  // namespace

Nonlinearity parse_nonlinearity(const std::string& name) {
  if (name == "linear") return Nonlinearity::linear;
  for (const char* conv : {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
    if (name == conv) return Nonlinearity::conv;
  if (name == "sigmoid") return Nonlinearity::sigmoid;
  if (name == "tanh") return Nonlinearity::tanh;
  if (name == "relu") return Nonlinearity::relu;
  if (name == "leaky_relu") return Nonlinearity::leaky_relu;
  if (name == "selu") return Nonlinearity::selu;
  TETHER_FAIL("init: unsupported nonlinearity '", name,
              "' (expected linear, conv1d/2d/3d, conv_transpose1d/2d/3d, sigmoid, tanh, relu, leaky_relu or selu)");
}

Fans calculate_fan_in_and_fan_out(const Shape& shape) {
  TETHER_CHECK(shape.size() >= 2, "init: fan in and fan out can not be computed for a tensor with fewer than 2 "
               "dimensions, got shape ", shape_str(shape));
  int64_t receptive_field = 1;
  for (size_t d = 2; d < shape.size(); ++d) receptive_field *= shape[d];
  return {shape[1] * receptive_field, shape[0] * receptive_field};
}

double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::conv:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: {
      const double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  TETHER_FAIL("init::calculate_gain: unknown nonlinearity");
}

Tensor uniform_(const Tensor& t, double a, double b, Generator& gen) {
  TETHER_CHECK(a <= b, "init::uniform_: lower bound ", a, " > upper bound ", b);
  return fill_random(t, "uniform_", [&](const Tensor& dst) { ops::uniform_(dst, a, b, gen); });
}

Tensor normal_(const Tensor& t, double mean, double std, Generator& gen) {
  TETHER_CHECK(std >= 0, "init::normal_: std must be >= 0, got ", std);
  return fill_random(t, "normal_", [&](const Tensor& dst) { ops::normal_(dst, mean, std, gen); });
}

Tensor trunc_normal_(const Tensor& t, double mean, double std, double a, double b, Generator& gen) {
  TETHER_CHECK(std > 0, "init::trunc_normal_: std must be > 0, got ", std);
  TETHER_CHECK(a < b, "init::trunc_normal_: empty interval [", a, ", ", b, "]");
  return fill_random(t, "trunc_normal_", [&](const Tensor& dst) {
    // Uniform in [2 cdf(a) - 1, 2 cdf(b) - 1], mapped through the normal quantile
    // mean + std sqrt(2) erfinv(u), then clamped against rounding (PyTorch's method). The
    // transform runs on a host f64 copy, then one copy into dst (any device or dtype).
    const double lo = 2.0 * normal_cdf((a - mean) / std) - 1.0, hi = 2.0 * normal_cdf((b - mean) / std) - 1.0;
    Tensor u = Tensor::empty(dst.shape(), DType::f64);
    ops::uniform_(u, lo, hi, gen);
    double* p = u.data<double>();
    const int64_t n = u.numel();
    const double scale = std * std::sqrt(2.0);
    for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(mean + scale * erfinv(p[i]), a), b);
    ops::copy_(dst, u);
  });
}

Tensor constant_(const Tensor& t, double value) {
  TETHER_CHECK(t.defined(), "init::constant_: undefined tensor");
  ops::fill_(t, value);
  return t;
}
Tensor zeros_(const Tensor& t) { return constant_(t, 0.0); }
Tensor ones_(const Tensor& t) { return constant_(t, 1.0); }

Tensor kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator& gen) {
  TETHER_CHECK(t.defined(), "init::kaiming_uniform_: undefined tensor");
  if (t.numel() == 0) return t;
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan_for(t, mode)));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(t, -bound, bound, gen);
}
Tensor kaiming_uniform_(const Tensor& t, Generator& gen) {
  return kaiming_uniform_(t, 0.0, FanMode::fan_in, Nonlinearity::leaky_relu, gen);
}

Tensor kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator& gen) {
  TETHER_CHECK(t.defined(), "init::kaiming_normal_: undefined tensor");
  if (t.numel() == 0) return t;
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan_for(t, mode)));
  return normal_(t, 0.0, std, gen);
}
Tensor kaiming_normal_(const Tensor& t, Generator& gen) {
  return kaiming_normal_(t, 0.0, FanMode::fan_in, Nonlinearity::leaky_relu, gen);
}

Tensor xavier_uniform_(const Tensor& t, double gain, Generator& gen) {
  TETHER_CHECK(t.defined(), "init::xavier_uniform_: undefined tensor");
  if (t.numel() == 0) return t;
  const Fans f = calculate_fan_in_and_fan_out(t.shape());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  return uniform_(t, -bound, bound, gen);
}

Tensor xavier_normal_(const Tensor& t, double gain, Generator& gen) {
  TETHER_CHECK(t.defined(), "init::xavier_normal_: undefined tensor");
  if (t.numel() == 0) return t;
  const Fans f = calculate_fan_in_and_fan_out(t.shape());
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), gen);
}

void default_conv_linear_init_(const Tensor& weight, const Tensor& bias, Generator& gen) {
  TETHER_CHECK(weight.defined() && weight.dim() >= 2, "init::default_conv_linear_init_: weight must have at least "
               "2 dimensions ([out, in] or [out, in/groups, kh, kw]), got ", weight.defined() ? weight.str() : "undefined");
  kaiming_uniform_(weight, std::sqrt(5.0), FanMode::fan_in, Nonlinearity::leaky_relu, gen);
  if (!bias.defined()) return;
  const int64_t fan_in = calculate_fan_in_and_fan_out(weight.shape()).fan_in;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform_(bias, -bound, bound, gen);
}

}  // namespace tether::init
