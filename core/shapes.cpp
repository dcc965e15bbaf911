// Shape logic shared by the back ends (see core/shapes.h).
#include "core/shapes.h"

#include <algorithm>

namespace tether {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    TETHER_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape s(shape.size(), 0);
  const int lead = static_cast<int>(shape.size()) - t.dim();
  for (int d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1) s[d + lead] = t.stride(d);
  return s;
}

ReducedDims reduced_dims(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  ReducedDims r;
  r.reduced.assign(x.dim(), dims.empty());
  for (int d : dims) r.reduced[x.wrap_dim(d)] = true;
  for (int d = 0; d < x.dim(); ++d)
    if (!r.reduced[d]) r.out_shape.push_back(x.size(d));
    else if (keepdim) r.out_shape.push_back(1);
  return r;
}

DimLayout dim_layout(const Tensor& t, int dim, const char* op) {
  DimLayout l;
  if (t.dim() == 0) {
    TETHER_CHECK(dim == 0 || dim == -1, op, ": dimension ", dim, " out of range for a 0-d tensor");
    return l;
  }
  TETHER_CHECK(dim >= -t.dim() && dim < t.dim(), op, ": dimension ", dim, " out of range for ", t.str());
  const int d = t.wrap_dim(dim);
  for (int i = 0; i < d; ++i) l.outer *= t.size(i);
  l.len = t.size(d);
  for (int i = d + 1; i < t.dim(); ++i) l.inner *= t.size(i);
  return l;
}

}  // namespace tether
