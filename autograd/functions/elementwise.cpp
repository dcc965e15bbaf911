// Elementwise ops: forward and backward side by side. Binary backward sums the broadcast
// gradient back to each input's shape (ops::sum_to).
#include <cmath>

#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

using ops::Binary;
using ops::Unary;

namespace {

Tensor bmul(const Tensor& a, const Tensor& b) { return ops::binary(Binary::mul, a, b); }
Tensor bdiv(const Tensor& a, const Tensor& b) { return ops::binary(Binary::div, a, b); }

struct BinaryBackward : Node {
  Binary op;
  Tensor a, b, out;  // saved as needed by op
  Shape a_shape, b_shape;
  bool a_needs = false, b_needs = false;

  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    switch (op) {
      case Binary::add:
        ga = g, gb = g;
        break;
      case Binary::sub:
        ga = g, gb = b_needs ? ops::unary(Unary::neg, g) : Tensor();
        break;
      case Binary::mul:
        if (a_needs) ga = bmul(g, b);
        if (b_needs) gb = bmul(g, a);
        break;
      case Binary::div:
        if (a_needs) ga = bdiv(g, b);
        if (b_needs) gb = ops::unary(Unary::neg, bdiv(bmul(g, out), b));  // -g a / b^2 = -g out / b
        break;
      case Binary::pow:  // d a^b / da = b a^(b-1); d/db = a^b log a
        if (a_needs) ga = bmul(g, bmul(b, ops::binary(Binary::pow, a, ops::add_scalar(b, -1.0))));
        if (b_needs) gb = bmul(g, bmul(out, ops::unary(Unary::log, a)));
        break;
      case Binary::maximum:
      case Binary::minimum: {
        // mask_a = 1 where a wins, 0.5 on ties (PyTorch splits the gradient evenly).
        Tensor diff = ops::binary(Binary::sub, a, b);
        Tensor s = ops::unary(Unary::sign, op == Binary::maximum ? diff : ops::unary(Unary::neg, diff));
        Tensor mask_a = ops::mul_scalar(ops::add_scalar(s, 1.0), 0.5);
        if (a_needs) ga = bmul(g, mask_a);
        if (b_needs) gb = bmul(g, ops::add_scalar(ops::unary(Unary::neg, mask_a), 1.0));
        break;
      }
    }
    return {a_needs && ga.defined() ? ops::sum_to(ga, a_shape) : Tensor(),
            b_needs && gb.defined() ? ops::sum_to(gb, b_shape) : Tensor()};
  }
  std::string name() const override { return "BinaryBackward"; }
  void release_saved() override { a = b = out = Tensor(); }
};

Tensor binary_op(Binary op, const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(op, a, b);
  if (!needs_grad({a, b})) return out;
  auto node = std::make_shared<BinaryBackward>();
  node->op = op;
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  node->a_needs = a.requires_grad();
  node->b_needs = b.requires_grad();
  const bool keep_a = op == Binary::mul || op == Binary::pow || op == Binary::maximum || op == Binary::minimum;
  const bool keep_b = op != Binary::add && op != Binary::sub;
  if (keep_a) node->a = saved(a);
  if (keep_b) node->b = saved(b);
  if (op == Binary::div || op == Binary::pow) node->out = saved(out);
  record(out, node, {a, b});
  return out;
}

// Unary ops whose derivative is computed by ops::unary_backward from x and/or y.
struct UnaryBackward : Node {
  Unary op;
  Tensor x, y;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::unary_backward(op, g, x, y)}; }
  std::string name() const override { return "UnaryBackward"; }
  void release_saved() override { x = y = Tensor(); }
};

Tensor unary_op(Unary op, const Tensor& x) {
  Tensor y = ops::unary(op, x);
  if (!needs_grad({x})) return y;
  auto node = std::make_shared<UnaryBackward>();
  node->op = op;
  // Keep only what the derivative reads: for relu that is the output alone, which the next
  // layer keeps anyway, so the input (often a BN output) can be freed.
  if (ops::derivative_needs_only_output(op)) node->y = saved(y);
  else node->x = saved(x);
  record(y, node, {x});
  return y;
}

struct ScaleBackward : Node {  // y = x * s (+ c)
  double s = 1.0;
  std::vector<Tensor> backward(const Tensor& g) override { return {s == 1.0 ? g : ops::mul_scalar(g, s)}; }
  std::string name() const override { return "ScaleBackward"; }
};

struct PowScalarBackward : Node {  // y = x^p
  Tensor x;
  double p = 1.0;
  std::vector<Tensor> backward(const Tensor& g) override {
    if (p == 0.0) return {ops::mul_scalar(g, 0.0)};
    return {bmul(g, ops::mul_scalar(ops::pow_scalar(x, p - 1.0), p))};
  }
  std::string name() const override { return "PowScalarBackward"; }
  void release_saved() override { x = Tensor(); }
};

struct ClampBackward : Node {
  Tensor x;
  double lo, hi;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::clamp_backward(g, x, lo, hi)}; }
  std::string name() const override { return "ClampBackward"; }
  void release_saved() override { x = Tensor(); }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(Binary::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(Binary::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(Binary::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(Binary::div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(Binary::pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(Binary::maximum, a, b); }

Tensor add(const Tensor& x, double s) {
  Tensor y = ops::add_scalar(x, s);
  if (needs_grad({x})) record(y, std::make_shared<ScaleBackward>(), {x});
  return y;
}

Tensor mul(const Tensor& x, double s) {
  Tensor y = ops::mul_scalar(x, s);
  if (needs_grad({x})) {
    auto node = std::make_shared<ScaleBackward>();
    node->s = s;
    record(y, node, {x});
  }
  return y;
}

Tensor pow(const Tensor& x, double p) {
  Tensor y = ops::pow_scalar(x, p);
  if (needs_grad({x})) {
    auto node = std::make_shared<PowScalarBackward>();
    node->x = saved(x);
    node->p = p;
    record(y, node, {x});
  }
  return y;
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  Tensor y = ops::clamp(x, lo, hi);
  if (needs_grad({x})) {
    auto node = std::make_shared<ClampBackward>();
    node->x = saved(x);
    node->lo = lo;
    node->hi = hi;
    record(y, node, {x});
  }
  return y;
}

Tensor neg(const Tensor& x) { return mul(x, -1.0); }
Tensor exp(const Tensor& x) { return unary_op(Unary::exp, x); }
Tensor log(const Tensor& x) { return unary_op(Unary::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(Unary::sqrt, x); }
Tensor abs(const Tensor& x) { return unary_op(Unary::abs, x); }
Tensor sign(const Tensor& x) { return unary_op(Unary::sign, x); }
Tensor square(const Tensor& x) { return unary_op(Unary::square, x); }
Tensor relu(const Tensor& x) { return unary_op(Unary::relu, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(Unary::sigmoid, x); }
Tensor silu(const Tensor& x) { return unary_op(Unary::silu, x); }
Tensor tanh(const Tensor& x) { return unary_op(Unary::tanh, x); }

}  // namespace tether
