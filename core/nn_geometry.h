// Index geometry of the pooling and batch-norm kernels, shared by the CPU and CUDA back ends:
// the planes and sizes of a pooling, PyTorch's average-pooling window and adaptive bins, and
// batch norm's [N, C, HW] layout. Small structs and TETHER_HOST_DEVICE inline functions, so
// CPU loops and CUDA kernels compute the same bounds and divisors. Argument checks are in the
// op front (core/ops.cpp).
#pragma once
#include <cstdint>

#include "core/host_device.h"
#include "core/tensor.h"

namespace tether {

// ---- pooling -------------------------------------------------------------------------------
// An NCHW pooling as `planes` = N*C independent planes, input [h, w], output [oh, ow].
struct PoolGeometry {
  int64_t planes, h, w, oh, ow;
};
inline PoolGeometry pool_geometry(const Shape& in, const Shape& out) {
  return {in[0] * in[1], in[2], in[3], out[2], out[3]};
}

// PyTorch's average-pooling window for output position o along one axis: the clipped range
// [begin, end) inside the input, and the window length counted inside the padded input
// (the ceil_mode overhang past input + padding is not counted).
struct AvgWindow {
  int64_t begin, end, padded_len;
};
TETHER_HOST_DEVICE inline AvgWindow avg_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel,
                                               int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t stop = start + kernel < size + pad ? start + kernel : size + pad;
  return {start > 0 ? start : 0, stop < size ? stop : size, stop - start};
}

// Adaptive bins: [floor(i*size/out), ceil((i+1)*size/out)).
TETHER_HOST_DEVICE inline int64_t bin_start(int64_t i, int64_t size, int64_t out) { return (i * size) / out; }
TETHER_HOST_DEVICE inline int64_t bin_end(int64_t i, int64_t size, int64_t out) {
  return ((i + 1) * size + out - 1) / out;
}

// ---- batch norm ----------------------------------------------------------------------------
// x [N, C] or [N, C, H, W] as [N, C, HW] (HW = 1 for 2-D inputs).
struct BnLayout {
  int64_t n, c, hw;
  TETHER_HOST_DEVICE int64_t count() const { return n * hw; }  // values per channel
};
inline BnLayout bn_layout(const Tensor& x) {
  return {x.size(0), x.size(1), x.dim() == 4 ? x.size(2) * x.size(3) : 1};
}

}  // namespace tether
