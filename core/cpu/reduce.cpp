// Reductions over dimensions (sum, amax, argmax; mean is a scaled sum, in core/ops.cpp) and
// whole-tensor scalars (sum, dot, norm). Reduced dims are moved last and made contiguous, so every reduction is a row
// reduction over [outer, inner]. f32 accumulates in double for accuracy.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"
#include "core/shapes.h"

namespace tether::cpu {

namespace {

struct RowLayout {
  Tensor rows;      // contiguous [outer, inner]
  Shape out_shape;  // result shape (with or without kept dims)
  int64_t outer = 1, inner = 1;
};

RowLayout to_rows(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  const ReducedDims rd = reduced_dims(x, dims, keepdim);
  const std::vector<bool>& reduced = rd.reduced;
  std::vector<int> order;
  RowLayout r;
  r.out_shape = rd.out_shape;
  for (int d = 0; d < x.dim(); ++d)
    if (!reduced[d]) {
      order.push_back(d);
      r.outer *= x.size(d);
    }
  for (int d = 0; d < x.dim(); ++d)
    if (reduced[d]) {
      order.push_back(d);
      r.inner *= x.size(d);
    }
  r.rows = ops::contiguous(ops::permute(x, order));
  return r;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return dispatch_float(x.dtype(), "sum", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    RowLayout r = to_rows(x, dims, keepdim);
    Tensor out = Tensor::empty(r.out_shape, x.dtype());
    const scalar_t* p = r.rows.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
    const int64_t inner = r.inner;
    if (r.outer == 1) {  // one long row: the parallel whole-tensor sum
      o[0] = static_cast<scalar_t>(sum_all(r.rows));
      return out;
    }
#pragma omp parallel for schedule(static) if (r.outer * inner >= kParallelGrain)
    for (int64_t i = 0; i < r.outer; ++i) {
      double s = 0;
      const scalar_t* row = p + i * inner;
      for (int64_t j = 0; j < inner; ++j) s += row[j];
      o[i] = static_cast<scalar_t>(s);
    }
    return out;
  });
}

Tensor amax(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return dispatch_float(x.dtype(), "amax", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    RowLayout r = to_rows(x, dims, keepdim);
    Tensor out = Tensor::empty(r.out_shape, x.dtype());
    const scalar_t* p = r.rows.data<scalar_t>();
    scalar_t* o = out.data<scalar_t>();
#pragma omp parallel for schedule(static) if (r.outer * r.inner >= kParallelGrain && r.outer > 1)
    for (int64_t i = 0; i < r.outer; ++i) {
      const scalar_t* row = p + i * r.inner;
      scalar_t m = row[0];
      for (int64_t j = 1; j < r.inner; ++j)
        if (row[j] > m || std::isnan(row[j])) m = row[j];  // NaN propagates, as in PyTorch
      o[i] = m;
    }
    return out;
  });
}

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  return dispatch_float(x.dtype(), "argmax", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    RowLayout r = to_rows(x, {dim}, keepdim);
    Tensor out = Tensor::empty(r.out_shape, DType::i64);
    const scalar_t* p = r.rows.data<scalar_t>();
    int64_t* o = out.data<int64_t>();
    for (int64_t i = 0; i < r.outer; ++i) {
      const scalar_t* row = p + i * r.inner;
      int64_t best = 0;
      for (int64_t j = 1; j < r.inner; ++j)
        if (row[j] > row[best] || (std::isnan(row[j]) && !std::isnan(row[best]))) best = j;
      o[i] = best;
    }
    return out;
  });
}

double sum_all(const Tensor& x) {
  return dispatch_float(x.dtype(), "sum_all", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor c = ops::contiguous(x);
    const scalar_t* p = c.data<scalar_t>();
    double total = 0;
    const int64_t n = c.numel();
#pragma omp parallel for reduction(+ : total) schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) total += p[i];
    return total;
  });
}

double dot(const Tensor& a, const Tensor& b) {
  return dispatch_float(a.dtype(), "dot", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor ac = ops::contiguous(a), bc = ops::contiguous(b);
    const scalar_t *p = ac.data<scalar_t>(), *q = bc.data<scalar_t>();
    double total = 0;
    const int64_t n = ac.numel();
#pragma omp parallel for reduction(+ : total) schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) total += static_cast<double>(p[i]) * q[i];
    return total;
  });
}

double norm(const Tensor& x, double p) {
  return dispatch_float(x.dtype(), "norm", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    Tensor c = ops::contiguous(x);
    const scalar_t* v = c.data<scalar_t>();
    const int64_t n = c.numel();
    if (std::isinf(p)) {
      double m = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(v[i])));
      return m;
    }
    double total = 0;
    if (p == 2.0) {
#pragma omp parallel for reduction(+ : total) schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) total += static_cast<double>(v[i]) * v[i];
      return std::sqrt(total);
    }
    if (p == 1.0) {
#pragma omp parallel for reduction(+ : total) schedule(static) if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) total += std::abs(static_cast<double>(v[i]));
      return total;
    }
    for (int64_t i = 0; i < n; ++i) total += std::pow(std::abs(static_cast<double>(v[i])), p);
    return std::pow(total, 1.0 / p);
  });
}

}  // namespace tether::cpu
