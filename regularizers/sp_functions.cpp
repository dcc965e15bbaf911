// Fused autograd functions behind SPEC 2's l2sp-fisher, l1sp, glsp, glsp-fisher and mars-sp
// rows, and the per-channel feature distance of kd and delta. Each runs raw ops (core/ops.h, so CPU and CUDA alike), returns a 0-d scalar, and keeps
// one tensor for its backward: the gradient itself up to the incoming scalar, which is all a
// scalar-valued penalty needs. Rows are SPEC 1's: the tensor viewed as [d0, rest].
#include <cmath>

#include "autograd/function.h"
#include "regularizers/penalty.h"

namespace tether::reg {
namespace {

// x − c, or x itself when c is undefined (the head is pulled toward zero).
Tensor difference(const Tensor& x, const Tensor& c) {
  if (!c.defined()) return ops::contiguous(x.detach());
  TETHER_CHECK(x.shape() == c.shape(), "penalty: parameter shape ", shape_str(x.shape()), " but reference shape ",
               shape_str(c.shape()));
  return ops::binary(ops::Binary::sub, x.detach(), c.detach());
}

void check_weight(const Tensor& x, const Tensor& f) {
  TETHER_CHECK(f.defined(), "penalty: Fisher weights are missing");
  TETHER_CHECK(x.shape() == f.shape(), "penalty: parameter shape ", shape_str(x.shape()), " but Fisher shape ",
               shape_str(f.shape()));
}

// SPEC 1 rows: [d0, rest] (a 0-d tensor is one row of one entry).
Shape rows_shape(const Tensor& x) {
  const int64_t rows = x.dim() == 0 ? 1 : x.shape()[0];
  return {rows, rows == 0 ? 0 : x.numel() / rows};
}

// The gradient is `direction` times a constant factor times the incoming scalar g (direction
// holds every per-element factor). Used by all four functions below.
struct ScaledDirectionBackward : Node {
  Tensor direction;  // shape of the input
  double factor = 1;  // a constant folded in here rather than in an extra pass over direction
  std::string label;
  std::vector<Tensor> backward(const Tensor& g) override {
    return {ops::mul_scalar(direction, factor * g.item<double>())};
  }
  std::string name() const override { return label; }
  void release_saved() override { direction = Tensor(); }
};

Tensor finish(const Tensor& x, double value, Tensor direction, const char* label, double factor = 1.0) {
  Tensor y = Tensor::scalar(value, x.dtype(), x.device());
  if (direction.defined()) {
    auto node = std::make_shared<ScaledDirectionBackward>();
    node->direction = ops::reshape(direction, x.shape());
    node->factor = factor;
    node->label = label;
    record(y, node, {x});
  }
  return y;
}

// MARS' subgradient: sign(d) on row `row` (SPEC 2: the first maximising row), zero elsewhere.
struct MarsBackward : Node {
  Tensor sign_row;  // [1, rest]
  Shape input_shape, rows;
  int64_t row = 0;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::zeros(rows, g.dtype(), g.device());
    ops::copy_(ops::narrow(gx, 0, row, 1), ops::mul_scalar(sign_row, g.item<double>()));
    return {ops::reshape(gx, input_shape)};
  }
  std::string name() const override { return "MarsNormBackward"; }
  void release_saved() override { sign_row = Tensor(); }
};

}  // namespace

Tensor fisher_squared_distance(const Tensor& x, const Tensor& c, const Tensor& f) {
  check_weight(x, f);
  Tensor d = difference(x, c);
  Tensor fd = ops::binary(ops::Binary::mul, f, d);
  const double value = ops::dot(fd, d);
  // ∂/∂x Σ F d² = 2 F d: the 2 is applied in the backward's one pass.
  return finish(x, value, needs_grad({x}) ? std::move(fd) : Tensor(), "FisherSquaredDistanceBackward", 2.0);
}

Tensor smooth_l1_distance(const Tensor& x, const Tensor& c, double eps) {
  Tensor d = difference(x, c);
  // s = √(d² + ε²); Σ (s − ε) summed in double; ∂/∂x = d / s.
  Tensor s = ops::unary(ops::Unary::sqrt, ops::add_scalar(ops::unary(ops::Unary::square, d), eps * eps));
  const double value = std::max(0.0, ops::sum_all(s) - static_cast<double>(s.numel()) * eps);
  if (!needs_grad({x})) return finish(x, value, Tensor(), "");
  return finish(x, value, ops::binary(ops::Binary::div, d, s), "SmoothL1DistanceBackward");
}

Tensor group_lasso_distance(const Tensor& x, const Tensor& c, const Tensor& f, double eps) {
  if (f.defined()) check_weight(x, f);
  const Shape rows = rows_shape(x);
  Tensor d = ops::reshape(difference(x, c), rows);
  Tensor fd = f.defined() ? ops::binary(ops::Binary::mul, ops::reshape(f.detach(), rows), d) : d;
  // q_r = Σ_{j∈r} F_j d_j² (F = 1 without Fisher); n_r = √(q_r + ε²).
  Tensor q = ops::sum(ops::binary(ops::Binary::mul, fd, d), {1}, /*keepdim=*/true);  // [R, 1]
  Tensor n = ops::unary(ops::Unary::sqrt, ops::add_scalar(q, eps * eps));
  // n − ε = q / (n + ε): the same number without cancellation (exactly 0 at w = w0).
  const double value =
      std::sqrt(static_cast<double>(rows[1])) *
      ops::sum_all(ops::binary(ops::Binary::div, q, ops::add_scalar(n, eps)));
  if (!needs_grad({x})) return finish(x, value, Tensor(), "");
  // ∂/∂x_j = √p F_j d_j / n_r (√p applied in the backward's one pass)
  return finish(x, value, ops::binary(ops::Binary::div, fd, n),
                f.defined() ? "GroupLassoFisherBackward" : "GroupLassoBackward", std::sqrt(static_cast<double>(rows[1])));
}

Tensor mars_norm(const Tensor& x, const Tensor& c) {
  const Shape rows = rows_shape(x);
  Tensor d = ops::reshape(difference(x, c), rows);
  Tensor row_l1 = ops::sum(ops::unary(ops::Unary::abs, d), {1});  // [R]
  if (rows[0] == 0) return finish(x, 0.0, Tensor(), "");
  const int64_t row = ops::argmax(row_l1, 0).item<int64_t>();  // the first maximum on ties
  const double value = ops::select(row_l1, 0, row).item<double>();
  Tensor y = Tensor::scalar(value, x.dtype(), x.device());
  if (needs_grad({x})) {
    auto node = std::make_shared<MarsBackward>();
    node->sign_row = ops::unary(ops::Unary::sign, ops::narrow(d, 0, row, 1));
    node->input_shape = x.shape();
    node->rows = rows;
    node->row = row;
    record(y, node, {x});
  }
  return y;
}

Tensor channel_squared_distance(const Tensor& x, const Tensor& c, const Tensor& a) {
  TETHER_CHECK(x.dim() >= 2, "feature penalty: a feature map needs [N, C, ...], got ", shape_str(x.shape()));
  const int64_t n = x.shape()[0], channels = x.shape()[1];
  const Shape ncr{n, channels, n * channels == 0 ? 0 : x.numel() / (n * channels)};
  Tensor d = ops::reshape(difference(x, c), ncr);
  // Per-channel sums Σ_n Σ_hw d², then Σ_c a_c · (that) in double. With a = 1 every number is
  // the same as without a (×1.0 is exact): delta with uniform attention equals kd bit for bit.
  const auto per_channel = ops::sum(ops::unary(ops::Unary::square, d), {0, 2}).to_vector<double>();
  std::vector<double> weights(per_channel.size(), 1.0);
  if (a.defined()) {
    TETHER_CHECK(a.dim() == 1 && a.shape()[0] == channels, "feature penalty: attention of shape ",
                 shape_str(a.shape()), " for a feature map with ", channels, " channels");
    weights = a.to_vector<double>();
  }
  double value = 0;
  for (size_t k = 0; k < per_channel.size(); ++k) value += weights[k] * per_channel[k];
  if (!needs_grad({x})) return finish(x, value, Tensor(), "");
  // ∂/∂x = 2 a_c d (the 2 applied in the backward's one pass).
  Tensor direction =
      a.defined() ? ops::binary(ops::Binary::mul, d, ops::reshape(ops::cast(a.detach(), d.dtype()), {1, channels, 1})) : d;
  return finish(x, value, std::move(direction), a.defined() ? "WeightedChannelDistanceBackward" : "ChannelDistanceBackward",
                2.0);
}

}  // namespace tether::reg
