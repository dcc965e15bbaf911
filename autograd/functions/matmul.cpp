// Matrix products: matmul (NumPy semantics) and linear (torch.nn.functional.linear), forward
// and backward side by side.
//
// matmul's backward works on the "promoted" product: a 1-D left operand is a row [1, K], a
// 1-D right operand a column [K, 1], and the gradient gets back the dims the forward dropped.
// Then, with batch dims broadcast, dA = dY op(B)^T and dB = op(A)^T dY, summed back to each
// operand's shape.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct MatmulBackward : Node {
  Tensor a, b;               // the promoted operands (saved only when the other needs them)
  Shape a_shape, b_shape;    // the original shapes
  Shape a2_shape, b2_shape;  // the promoted shapes
  Shape y2_shape;            // the promoted output shape [.., M, N]

  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor g2 = ops::reshape(g, y2_shape);
    Tensor ga, gb;
    if (next[0]) ga = ops::reshape(ops::sum_to(ops::matmul(g2, b, false, true), a2_shape), a_shape);
    if (next[1]) gb = ops::reshape(ops::sum_to(ops::matmul(a, g2, true, false), b2_shape), b_shape);
    return {ga, gb};
  }
  std::string name() const override { return "MatmulBackward"; }
  void release_saved() override { a = b = Tensor(); }
};

// y = x w^T + b on x2 = x viewed as [rows, in].
struct LinearBackward : Node {
  Tensor x2, w;  // x2: [rows, in]
  Shape x_shape;

  std::vector<Tensor> backward(const Tensor& g) override {
    const int64_t out = w.size(0);
    Tensor g2 = ops::reshape(g, {-1, out});
    Tensor gx, gw, gb;
    if (next[0]) gx = ops::reshape(ops::matmul(g2, w), x_shape);  // [rows, out] x [out, in]
    if (next[1]) {
      gw = Tensor::empty(w.shape(), g.dtype(), g.device());
      ops::gemm(true, false, 1.0, g2, x2, 0.0, gw);  // g2^T x2: [out, rows] x [rows, in]
    }
    if (next.size() > 2 && next[2]) gb = ops::sum(g2, {0});
    return next.size() > 2 ? std::vector<Tensor>{gx, gw, gb} : std::vector<Tensor>{gx, gw};
  }
  std::string name() const override { return "LinearBackward"; }
  void release_saved() override { x2 = w = Tensor(); }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor y = ops::matmul(a, b);
  if (!needs_grad({a, b})) return y;
  auto node = std::make_shared<MatmulBackward>();
  Tensor a2 = a.dim() == 1 ? ops::unsqueeze(a, 0) : a;
  Tensor b2 = b.dim() == 1 ? ops::unsqueeze(b, 1) : b;
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  node->a2_shape = a2.shape();
  node->b2_shape = b2.shape();
  // The promoted output: batch dims of y, then M and N (1 where the forward dropped them).
  Shape y2(y.shape().begin(), y.shape().end() - (a.dim() == 1 ? 0 : 1) - (b.dim() == 1 ? 0 : 1));
  y2.push_back(a2.size(-2));
  y2.push_back(b2.size(-1));
  node->y2_shape = y2;
  if (b.requires_grad()) node->a = saved(a2);
  if (a.requires_grad()) node->b = saved(b2);
  record(y, node, {a, b});
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  TETHER_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1), "linear: input ", shape_str(x.shape()),
               " and weight ", shape_str(w.shape()), " (expects x [.., in] and w [out, in])");
  TETHER_CHECK(x.dtype() == w.dtype(), "linear: dtypes differ (", dtype_name(x.dtype()), " and ",
               dtype_name(w.dtype()), ")");
  const int64_t in = w.size(1), out = w.size(0);
  if (b.defined())
    TETHER_CHECK(b.dim() == 1 && b.size(0) == out && b.dtype() == x.dtype(), "linear: bias ", b.str(), " for ",
                 out, " outputs of dtype ", dtype_name(x.dtype()));
  Tensor x2 = ops::reshape(x, {-1, in});
  Tensor y2 = Tensor::empty({x2.size(0), out}, x.dtype(), x.device());
  if (b.defined()) {
    // Start from the bias and let the GEMM accumulate onto it (one pass over y).
    ops::copy_(y2, ops::expand(b, y2.shape()));
    ops::gemm(false, true, 1.0, x2, w, 1.0, y2);
  } else {
    ops::gemm(false, true, 1.0, x2, w, 0.0, y2);
  }
  Shape y_shape(x.shape().begin(), x.shape().end() - 1);
  y_shape.push_back(out);
  Tensor y = ops::view(y2, y_shape);
  if (!needs_grad({x, w, b})) return y;
  auto node = std::make_shared<LinearBackward>();
  node->x_shape = x.shape();
  if (w.requires_grad()) node->x2 = saved(x2);
  node->w = saved(w);  // its shape is needed even when only x needs a gradient
  if (b.defined()) record(y, node, {x, w, b});
  else record(y, node, {x, w});
  return y;
}

}  // namespace tether
