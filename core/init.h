// Parameter initialisers, mirroring torch.nn.init on tether's Philox Generator. The formulas
// (fans, gains, bounds, standard deviations) are PyTorch's; the random streams are ours, so
// values match PyTorch in distribution, not bit for bit. Every initialiser fills `t` in place
// (raw, never recorded by autograd), works for any strides and returns `t`.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "core/random.h"
#include "core/tensor.h"

namespace tether::init {

// The `mode` of the Kaiming initialisers.
enum class FanMode { fan_in, fan_out };

// The `nonlinearity` names of torch.nn.init.calculate_gain. `conv` stands for every
// conv{1,2,3}d / conv_transpose{1,2,3}d name (gain 1, like linear).
enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };

// PyTorch's string names ("relu", "leaky_relu", "conv2d", ...); throws on an unknown name.
Nonlinearity parse_nonlinearity(const std::string& name);

struct Fans {
  int64_t fan_in = 0;
  int64_t fan_out = 0;
};

// torch.nn.init._calculate_fan_in_and_fan_out: for a weight of shape [out, in, k...],
// fan_in = in * prod(k), fan_out = out * prod(k). Needs at least 2 dimensions.
Fans calculate_fan_in_and_fan_out(const Shape& shape);
inline Fans calculate_fan_in_and_fan_out(const Tensor& t) { return calculate_fan_in_and_fan_out(t.shape()); }

// torch.nn.init.calculate_gain: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
// leaky_relu sqrt(2 / (1 + slope^2)) with slope = param (default 0.01), selu 3/4.
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);

// torch.nn.init.uniform_: U(a, b).
Tensor uniform_(const Tensor& t, double a, double b, Generator& gen);
// torch.nn.init.normal_: N(mean, std^2).
Tensor normal_(const Tensor& t, double mean, double std, Generator& gen);
// torch.nn.init.trunc_normal_: N(mean, std^2) restricted to [a, b] (inverse-CDF method, as
// PyTorch: uniform in [cdf(a), cdf(b)], then erfinv).
Tensor trunc_normal_(const Tensor& t, double mean, double std, double a, double b, Generator& gen);
inline Tensor trunc_normal_(const Tensor& t, double std, Generator& gen) {  // PyTorch's defaults a=-2, b=2
  return trunc_normal_(t, 0.0, std, -2.0, 2.0, gen);
}
// torch.nn.init.constant_ / zeros_ / ones_.
Tensor constant_(const Tensor& t, double value);
Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);

// torch.nn.init.kaiming_uniform_: U(-bound, bound), bound = gain * sqrt(3 / fan) with
// gain = calculate_gain(nonlinearity, a) and fan chosen by `mode`. The short form uses
// PyTorch's defaults: a = 0, fan_in, leaky_relu (so gain sqrt(2)).
Tensor kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator& gen);
Tensor kaiming_uniform_(const Tensor& t, Generator& gen);
// torch.nn.init.kaiming_normal_: N(0, std^2), std = gain / sqrt(fan). Same defaults.
Tensor kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, Generator& gen);
Tensor kaiming_normal_(const Tensor& t, Generator& gen);

// torch.nn.init.xavier_uniform_: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(const Tensor& t, double gain, Generator& gen);
inline Tensor xavier_uniform_(const Tensor& t, Generator& gen) { return xavier_uniform_(t, 1.0, gen); }
// torch.nn.init.xavier_normal_: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal_(const Tensor& t, double gain, Generator& gen);
inline Tensor xavier_normal_(const Tensor& t, Generator& gen) { return xavier_normal_(t, 1.0, gen); }

// The reset_parameters() of torch.nn.Linear and torch.nn.Conv2d: weight kaiming_uniform_
// with a = sqrt(5) (i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))), then, when `bias` is defined,
// bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (0 bound when fan_in is 0). Weight drawn first.
void default_conv_linear_init_(const Tensor& weight, const Tensor& bias, Generator& gen);

}  // namespace tether::init
