#include "core/tensor.h"

#include <ostream>

#include "core/ops.h"

namespace tether {

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) TETHER_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * element_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  for (int64_t d : shape) TETHER_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * element_size(dtype), Device::cpu(), /*pinned=*/true);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  ops::fill_(t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  dispatch_all(dtype, "arange", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<scalar_t>(i);
  });
  return t;
}

bool Tensor::is_contiguous() const {
  const TensorImpl& m = impl();
  int64_t expected = 1;
  for (int i = static_cast<int>(m.shape.size()) - 1; i >= 0; --i) {
    if (m.shape[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (m.strides[i] != expected) return false;
    expected *= m.shape[i];
  }
  return true;
}

int Tensor::wrap_dim(int d) const {
  const int n = dim();
  TETHER_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a ", n, "-d tensor ", shape_str(shape()));
  return d < 0 ? d + n : d;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * element_size(dtype());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = ops::contiguous(ops::cast(to(Device::cpu()), dtype_of<T>()));
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <typename T>
T Tensor::item() const {
  TETHER_CHECK(numel() == 1, "item() on a tensor of ", numel(), " elements ", shape_str(shape()));
  return to_vector<T>()[0];
}

#define TETHER_INSTANTIATE(T)                        \
  template std::vector<T> Tensor::to_vector() const; \
  template T Tensor::item() const;
TETHER_INSTANTIATE(float)
TETHER_INSTANTIATE(double)
TETHER_INSTANTIATE(int64_t)
TETHER_INSTANTIATE(uint8_t)
#undef TETHER_INSTANTIATE

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  ops::copy_(out, *this);
  return out;
}

Tensor Tensor::to(DType dtype) const { return ops::cast(*this, dtype); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  ops::copy_(out, *this);
  return out;
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

const Tensor& Tensor::fill_(double value) const {
  ops::fill_(*this, value);
  return *this;
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  ops::copy_(*this, src);
  return *this;
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  os << t.str();
  if (!t.defined() || t.numel() > 64) return os;
  os << " {";
  std::vector<double> v = t.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  return os << "}";
}

}  // namespace tether
