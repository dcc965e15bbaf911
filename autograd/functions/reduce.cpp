// Reductions: sum, mean, amax (gradient to the first maximum), Frobenius norm, and the fused
// squared distance / squared norm of the L2-SP-style penalties.
#include <cmath>

#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

// Shape of the reduction's result with keepdim = true (so the gradient broadcasts back).
Shape kept_shape(const Tensor& x, const std::vector<int>& dims) {
  Shape s = x.shape();
  if (dims.empty()) return Shape(x.dim(), 1);
  for (int d : dims) s[x.wrap_dim(d)] = 1;
  return s;
}

struct SumBackward : Node {
  Shape input_shape, kept;
  double scale = 1.0;  // 1/count for mean
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gk = ops::reshape(g, kept);
    Tensor out = Tensor::empty(input_shape, g.dtype(), g.device());
    ops::copy_(out, ops::expand(gk, input_shape));
    if (scale != 1.0) ops::scale_(out, scale);
    return {out};
  }
  std::string name() const override { return "SumBackward"; }
};

Tensor sum_or_mean(const Tensor& x, const std::vector<int>& dims, bool keepdim, bool is_mean) {
  Tensor y = is_mean ? ops::mean(x, dims, keepdim) : ops::sum(x, dims, keepdim);
  if (needs_grad({x})) {
    auto node = std::make_shared<SumBackward>();
    node->input_shape = x.shape();
    node->kept = kept_shape(x, dims);
    if (is_mean) node->scale = y.numel() == 0 ? 0.0 : static_cast<double>(y.numel()) / static_cast<double>(x.numel());
    record(y, node, {x});
  }
  return y;
}

struct AmaxBackward : Node {
  Tensor index;  // i64 argmax, keepdim shape
  Shape input_shape, kept;
  int dim = 0;
  std::vector<Tensor> backward(const Tensor& g) override {
    // Scatter along `dim` (a host loop over the index tensor, on CUDA through host copies: amax
    // is not on a hot path).
    Tensor gx = Tensor::zeros(input_shape, g.dtype());
    Tensor gk = ops::contiguous(ops::reshape(g.to(Device::cpu()), kept));
    Tensor gx_moved = ops::contiguous(ops::transpose(gx, dim, -1));
    Tensor idx = ops::contiguous(ops::transpose(index.to(Device::cpu()), dim, -1));
    Tensor gsrc = ops::contiguous(ops::transpose(gk, dim, -1));
    const int64_t len = input_shape[dim], rows = idx.numel();
    dispatch_float(g.dtype(), "amax backward", [&](auto tag_) {
    using scalar_t = decltype(tag_);
      scalar_t* out = gx_moved.data<scalar_t>();
      const scalar_t* src = gsrc.data<scalar_t>();
      const int64_t* ip = idx.data<int64_t>();
      for (int64_t r = 0; r < rows; ++r) out[r * len + ip[r]] += src[r];
    });
    return {ops::contiguous(ops::transpose(gx_moved, dim, -1)).to(g.device())};
  }
  std::string name() const override { return "AmaxBackward"; }
  void release_saved() override { index = Tensor(); }
};

struct NormBackward : Node {
  Tensor x;
  double norm = 0;
  std::vector<Tensor> backward(const Tensor& g) override {
    const double scale = norm == 0.0 ? 0.0 : g.item<double>() / norm;
    return {ops::mul_scalar(x, scale)};
  }
  std::string name() const override { return "NormBackward"; }
  void release_saved() override { x = Tensor(); }
};

// d/dx Σ (x − c)² = 2 (x − c); d = x − c is kept from the forward.
struct SquaredDistanceBackward : Node {
  Tensor d;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::mul_scalar(d, 2.0 * g.item<double>())}; }
  std::string name() const override { return "SquaredDistanceBackward"; }
  void release_saved() override { d = Tensor(); }
};

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) { return sum_or_mean(x, dims, keepdim, false); }
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) { return sum_or_mean(x, dims, keepdim, true); }

Tensor amax(const Tensor& x, int dim, bool keepdim) {
  dim = x.wrap_dim(dim);
  Tensor y = ops::amax(x, {dim}, keepdim);
  if (needs_grad({x})) {
    auto node = std::make_shared<AmaxBackward>();
    node->index = ops::argmax(x, dim, /*keepdim=*/true);
    node->input_shape = x.shape();
    node->kept = kept_shape(x, {dim});
    node->dim = dim;
    record(y, node, {x});
  }
  return y;
}

Tensor norm(const Tensor& x) {
  const double n = ops::norm(x, 2.0);
  Tensor y = Tensor::scalar(n, x.dtype(), x.device());
  if (needs_grad({x})) {
    auto node = std::make_shared<NormBackward>();
    node->x = saved(x);
    node->norm = n;
    record(y, node, {x});
  }
  return y;
}

Tensor squared_distance(const Tensor& x, const Tensor& c) {
  TETHER_CHECK(x.shape() == c.shape(), "squared_distance: shapes ", shape_str(x.shape()), " and ", shape_str(c.shape()),
               " differ");
  Tensor d = ops::binary(ops::Binary::sub, x, c.detach());
  Tensor y = Tensor::scalar(ops::dot(d, d), x.dtype(), x.device());
  if (needs_grad({x})) {
    auto node = std::make_shared<SquaredDistanceBackward>();
    node->d = std::move(d);
    record(y, node, {x});
  }
  return y;
}

Tensor squared_norm(const Tensor& x) {
  Tensor y = Tensor::scalar(ops::dot(x, x), x.dtype(), x.device());
  if (needs_grad({x})) {
    auto node = std::make_shared<SquaredDistanceBackward>();
    node->d = saved(x);
    record(y, node, {x});
  }
  return y;
}

}  // namespace tether
