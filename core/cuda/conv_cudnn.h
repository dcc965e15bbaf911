// One cuDNN 2-D convolution call (forward, backward-data or backward-weight) on packed NCHW
// device buffers, with the algorithm chosen once per geometry (core/cuda/conv_cudnn.cpp).
// The tensor plumbing (checks, contiguity, empty cases, batch chunks) is core/cuda/conv.cu.
#pragma once
#include "core/ops.h"

namespace tether::cuda {

enum class ConvDirection { forward, backward_data, backward_weight };

// x [N, C, H, W], w [O, C/groups, kh, kw] and y = conv(x, w) [N, O, OH, OW], fully packed
// NCHW on `device`, of `dtype` (f32/f64). `dir` names the output:
//   forward          y  = conv(x, w)
//   backward_data    x  = the gradient w.r.t. x, y holding grad_y
//   backward_weight  w  = the gradient w.r.t. w, y holding grad_y
// accumulate adds into the output (beta 1) instead of overwriting it (beta 0). Every tensor
// must have at most 2^31 - 1 elements and no size 0 (cuDNN's limits).
void cudnn_convolution(ConvDirection dir, int device, DType dtype, const Shape& x_shape, const Shape& w_shape,
                       const ops::Conv2dParams& p, void* x, void* w, void* y, bool accumulate);

}  // namespace tether::cuda
