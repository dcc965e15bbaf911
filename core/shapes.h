// Shape logic shared by the CPU and CUDA back ends: NumPy broadcasting (the result shape and
// an operand's broadcast strides), the dims and result shape of a reduction, and the
// [outer, len, inner] view of a tensor around one dim (softmax). Host code only.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace tether {

// NumPy broadcasting of two shapes; throws "shapes [..] and [..] cannot be broadcast together".
Shape broadcast_shapes(const Shape& a, const Shape& b);

// Broadcast strides of `t` against `shape` (0 where t is broadcast).
Shape broadcast_strides(const Tensor& t, const Shape& shape);

// The dims a reduction covers (`dims` empty = all; negative dims count from the end) and its
// result shape, with the reduced dims kept as size 1 or dropped.
struct ReducedDims {
  std::vector<bool> reduced;  // per dim of x
  Shape out_shape;
};
ReducedDims reduced_dims(const Tensor& x, const std::vector<int>& dims, bool keepdim);

// `t` seen as [outer, len, inner] around `dim`. A 0-d tensor is [1] (dim 0 or -1), as in
// PyTorch. Errors name `op`.
struct DimLayout {
  int64_t outer = 1, len = 1, inner = 1;
};
DimLayout dim_layout(const Tensor& t, int dim, const char* op);

}  // namespace tether
