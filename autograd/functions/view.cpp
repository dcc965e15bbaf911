// Views and layout. A view's backward maps the gradient back to the input's shape:
// reshape -> reshape back, permute -> inverse permute, narrow/select -> zero-padded copy,
// expand -> sum over broadcast dims, cat -> slices.
#include "autograd/function.h"
#include "autograd/ops.h"

namespace tether {

namespace {

struct ReshapeBackward : Node {
  Shape input_shape;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::reshape(g, input_shape)}; }
  std::string name() const override { return "ReshapeBackward"; }
};

struct PermuteBackward : Node {
  std::vector<int> inverse;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::permute(g, inverse)}; }
  std::string name() const override { return "PermuteBackward"; }
};

struct NarrowBackward : Node {  // also select (with a squeezed dim)
  Shape input_shape;
  int dim = 0;
  int64_t start = 0;
  bool squeezed = false;
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::zeros(input_shape, g.dtype(), g.device());
    Tensor src = squeezed ? ops::unsqueeze(g, dim) : g;
    ops::copy_(ops::narrow(gx, dim, start, src.size(dim)), src);
    return {gx};
  }
  std::string name() const override { return "NarrowBackward"; }
};

struct ExpandBackward : Node {
  Shape input_shape;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::sum_to(g, input_shape)}; }
  std::string name() const override { return "ExpandBackward"; }
};

struct IdentityBackward : Node {
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
  std::string name() const override { return "IdentityBackward"; }
};

struct CatBackward : Node {
  int dim = 0;
  std::vector<int64_t> sizes;
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> out;
    int64_t start = 0;
    for (int64_t s : sizes) {
      out.push_back(ops::narrow(g, dim, start, s));
      start += s;
    }
    return out;
  }
  std::string name() const override { return "CatBackward"; }
};

Tensor record_reshape(const Tensor& x, Tensor y) {
  if (needs_grad({x})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->input_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return record_reshape(x, ops::reshape(x, shape)); }
Tensor view(const Tensor& x, const Shape& shape) { return record_reshape(x, ops::view(x, shape)); }
Tensor unsqueeze(const Tensor& x, int dim) { return record_reshape(x, ops::unsqueeze(x, dim)); }
Tensor squeeze(const Tensor& x, int dim) { return record_reshape(x, ops::squeeze(x, dim)); }

Tensor flatten(const Tensor& x, int start_dim, int end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = x.wrap_dim(start_dim);
  end_dim = x.wrap_dim(end_dim);
  TETHER_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " after end_dim ", end_dim);
  Shape shape;
  for (int d = 0; d < start_dim; ++d) shape.push_back(x.size(d));
  int64_t n = 1;
  for (int d = start_dim; d <= end_dim; ++d) n *= x.size(d);
  shape.push_back(n);
  for (int d = end_dim + 1; d < x.dim(); ++d) shape.push_back(x.size(d));
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  Tensor y = ops::permute(x, dims);
  if (needs_grad({x})) {
    auto node = std::make_shared<PermuteBackward>();
    node->inverse.resize(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) node->inverse[x.wrap_dim(dims[i])] = static_cast<int>(i);
    record(y, node, {x});
  }
  return y;
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  std::vector<int> dims(x.dim());
  for (int i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[x.wrap_dim(d0)], dims[x.wrap_dim(d1)]);
  return permute(x, dims);
}

Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  Tensor y = ops::narrow(x, dim, start, length);
  if (needs_grad({x})) {
    auto node = std::make_shared<NarrowBackward>();
    node->input_shape = x.shape();
    node->dim = x.wrap_dim(dim);
    node->start = start;
    record(y, node, {x});
  }
  return y;
}

Tensor select(const Tensor& x, int dim, int64_t index) {
  Tensor y = ops::select(x, dim, index);
  if (needs_grad({x})) {
    auto node = std::make_shared<NarrowBackward>();
    node->input_shape = x.shape();
    node->dim = x.wrap_dim(dim);
    node->start = index < 0 ? index + x.size(dim) : index;
    node->squeezed = true;
    record(y, node, {x});
  }
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor y = ops::expand(x, shape);
  if (needs_grad({x})) {
    auto node = std::make_shared<ExpandBackward>();
    node->input_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor y = ops::contiguous(x);
  if (needs_grad({x})) record(y, std::make_shared<IdentityBackward>(), {x});
  return y;
}

Tensor cat(const std::vector<Tensor>& xs, int dim) {
  Tensor y = ops::cat(xs, dim);
  if (needs_grad(xs)) {
    auto node = std::make_shared<CatBackward>();
    node->dim = xs[0].wrap_dim(dim);
    for (const Tensor& x : xs) node->sizes.push_back(x.size(node->dim));
    record(y, node, xs);
  }
  return y;
}

}  // namespace tether
