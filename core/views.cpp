// Views: new shapes and strides over the same storage, on any device (no data moves),
// and cat, which copies slices through the op front.
#include <algorithm>
#include <numeric>

#include "core/ops.h"

namespace tether::ops {

namespace {
// Resolves a single -1 and checks the element count.
Shape infer_shape(const Tensor& x, Shape shape) {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TETHER_CHECK(infer < 0, "view/reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      TETHER_CHECK(shape[i] >= 0, "view/reshape: bad size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    TETHER_CHECK(known > 0 && x.numel() % known == 0, "view/reshape: cannot reshape ", shape_str(x.shape()),
                 " to ", shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  TETHER_CHECK(shape_numel(shape) == x.numel(), "view/reshape: cannot reshape ", shape_str(x.shape()), " (",
               x.numel(), " elements) to ", shape_str(shape));
  return shape;
}

// Strides for viewing x as `shape` without a copy, if possible (PyTorch's computeStride).
bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
  out.assign(shape.size(), 0);
  if (x.numel() == 0) {
    out = contiguous_strides(shape);
    return true;
  }
  const Shape& old_shape = x.shape();
  const Shape& old_strides = x.strides();
  int view_d = static_cast<int>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = static_cast<int>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) {
    // Remaining leading dims of size 1.
    for (; view_d >= 0; --view_d) {
      if (shape[view_d] != 1) return false;
      out[view_d] = 1;
    }
  }
  return true;
}
}  // namespace

Tensor view(const Tensor& x, Shape shape) {
  shape = infer_shape(x, std::move(shape));
  Shape strides;
  TETHER_CHECK(view_strides(x, shape, strides), "view: ", shape_str(shape), " is not compatible with the strides ",
               shape_str(x.strides()), " of ", shape_str(x.shape()), "; use reshape (which copies)");
  return make_view(x, shape, strides, x.offset());
}

Tensor reshape(const Tensor& x, Shape shape) {
  shape = infer_shape(x, std::move(shape));
  Shape strides;
  if (view_strides(x, shape, strides)) return make_view(x, shape, strides, x.offset());
  return view(contiguous(x), shape);
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  TETHER_CHECK(static_cast<int>(dims.size()) == x.dim(), "permute: ", dims.size(), " dims for a ", x.dim(),
               "-d tensor");
  Shape shape(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = x.wrap_dim(dims[i]);
    TETHER_CHECK(!seen[d], "permute: dimension ", d, " repeated");
    seen[d] = true;
    shape[i] = x.size(d);
    strides[i] = x.stride(d);
  }
  return make_view(x, shape, strides, x.offset());
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  std::vector<int> dims(x.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[x.wrap_dim(d0)], dims[x.wrap_dim(d1)]);
  return permute(x, dims);
}

Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length) {
  dim = x.wrap_dim(dim);
  TETHER_CHECK(start >= 0 && length >= 0 && start + length <= x.size(dim), "narrow: [", start, ", ",
               start + length, ") out of range for size ", x.size(dim), " of dimension ", dim);
  Shape shape = x.shape();
  shape[dim] = length;
  return make_view(x, shape, x.strides(), x.offset() + start * x.stride(dim));
}

Tensor select(const Tensor& x, int dim, int64_t index) {
  dim = x.wrap_dim(dim);
  TETHER_CHECK(index >= -x.size(dim) && index < x.size(dim), "select: index ", index, " out of range for size ",
               x.size(dim));
  if (index < 0) index += x.size(dim);
  Shape shape = x.shape(), strides = x.strides();
  const int64_t offset = x.offset() + index * x.stride(dim);
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  return make_view(x, shape, strides, offset);
}

Tensor unsqueeze(const Tensor& x, int dim) {
  TETHER_CHECK(dim >= -x.dim() - 1 && dim <= x.dim(), "unsqueeze: dimension ", dim, " out of range");
  if (dim < 0) dim += x.dim() + 1;
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = dim < x.dim() ? x.stride(dim) * x.size(dim) : 1;
  shape.insert(shape.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return make_view(x, shape, strides, x.offset());
}

Tensor squeeze(const Tensor& x, int dim) {
  dim = x.wrap_dim(dim);
  if (x.size(dim) != 1) return x;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  return make_view(x, shape, strides, x.offset());
}

Tensor expand(const Tensor& x, const Shape& shape) {
  TETHER_CHECK(shape.size() >= static_cast<size_t>(x.dim()), "expand: ", shape_str(x.shape()), " to ",
               shape_str(shape));
  const int lead = static_cast<int>(shape.size()) - x.dim();
  Shape strides(shape.size(), 0);
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    if (d < lead) continue;
    const int64_t size = x.size(d - lead);
    if (size == shape[d]) strides[d] = x.stride(d - lead);
    else TETHER_CHECK(size == 1, "expand: cannot expand ", shape_str(x.shape()), " to ", shape_str(shape));
  }
  return make_view(x, shape, strides, x.offset());
}

Tensor cat(const std::vector<Tensor>& xs, int dim) {
  TETHER_CHECK(!xs.empty(), "cat: no tensors");
  const Tensor& first = xs[0];
  dim = first.wrap_dim(dim);
  Shape shape = first.shape();
  int64_t total = 0;
  for (const Tensor& x : xs) {
    TETHER_CHECK(x.dim() == first.dim() && x.dtype() == first.dtype() && x.device() == first.device(),
                 "cat: tensor ", x.str(), " does not match ", first.str());
    for (int d = 0; d < x.dim(); ++d)
      TETHER_CHECK(d == dim || x.size(d) == first.size(d), "cat: shapes ", shape_str(x.shape()), " and ",
                   shape_str(first.shape()), " differ outside dimension ", dim);
    total += x.size(dim);
  }
  shape[dim] = total;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t start = 0;
  for (const Tensor& x : xs) {
    copy_(narrow(out, dim, start, x.size(dim)), x);
    start += x.size(dim);
  }
  return out;
}

}  // namespace tether::ops
