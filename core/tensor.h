// Tensor: a typed, strided view onto a ref-counted Storage, plus (optionally) the autograd
// record of how it was computed. Copying a Tensor copies a handle, never data.
//
// This header is core: it knows nothing of how gradients are computed. The autograd fields
// are an opaque pointer (AutogradMeta, defined in autograd/meta.h) and the few autograd
// methods declared here are implemented in autograd/tensor_autograd.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace tether {

using Shape = std::vector<int64_t>;
struct AutogradMeta;  // autograd/meta.h
class Node;           // autograd/node.h

std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  std::shared_ptr<AutogradMeta> autograd;  // null until autograd needs it
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no storage); defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (uninitialised, filled, from host data) -----------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  // A CPU tensor in page-locked memory: its copies to a GPU are asynchronous (Storage::pinned).
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // 0, 1, ..., n-1
  static Tensor arange(int64_t n, DType dtype = DType::f32);

  // ---- metadata ---------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int dim() const { return static_cast<int>(impl().shape.size()); }
  int64_t size(int d) const { return impl().shape[wrap_dim(d)]; }
  int64_t stride(int d) const { return impl().strides[wrap_dim(d)]; }
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  // Normalises a possibly negative dimension index, checking its range.
  int wrap_dim(int d) const;
  std::string str() const;  // "f32[2, 3] cpu"
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // ---- data access (CPU or device pointers at the view's offset) --------------
  template <typename T> T* data() const;
  void* raw_data() const;
  // Copies to host and converts: a scalar, or all elements in row-major order.
  template <typename T> T item() const;
  template <typename T> std::vector<T> to_vector() const;

  // ---- raw (not recorded by autograd) copies and views --------------------------
  // Explicit moves: a new leaf tensor on `device`/of `dtype` (a handle to this one if nothing changes).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;  // contiguous copy, same device and dtype, no autograd history
  // Shares storage, but not autograd history: the tensor's values as a new leaf.
  Tensor detach() const;
  // Fill/copy in place (raw, for initialisation and optimizer updates under no-grad).
  const Tensor& fill_(double value) const;
  const Tensor& copy_(const Tensor& src) const;  // same shape; any strides, dtypes or devices

  // ---- autograd (implemented in autograd/tensor_autograd.cpp) -------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool value = true);
  bool is_leaf() const;               // not produced by a recorded op
  Tensor grad() const;                // accumulated gradient (undefined until backward)
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;             // drops .grad (the caller zeroes; kernels accumulate)
  std::shared_ptr<Node> grad_fn() const;
  // Backpropagates from this tensor (a scalar unless `gradient` is given), accumulating
  // into the .grad of every leaf that requires grad. Frees the graph unless retain_graph.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    TETHER_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A new tensor sharing `base`'s storage with the given geometry (no autograd history).
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- template definitions --------------------------------------------------------
template <typename T>
T* Tensor::data() const {
  TETHER_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() on a ",
               dtype_name(dtype()), " tensor");
  return static_cast<T*>(impl().storage->data()) + impl().offset;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  TETHER_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ",
               values.size(), " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace tether
