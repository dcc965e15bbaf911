// Differentiable ops: each runs the raw kernel from core/ops.h and, when grad mode is on and
// an input requires grad, records a backward node. Each family's forward and backward live
// side by side in autograd/functions/<family>.cpp (conv backward: functions/conv.cpp).
#pragma once
#include <vector>

#include "core/ops.h"

namespace tether {

using ops::Conv2dParams;
using ops::Pool2dParams;
using ops::Reduction;

// ---- elementwise (functions/elementwise.cpp) -----------------------------------------
Tensor add(const Tensor& a, const Tensor& b);  // broadcasting, as are sub/mul/div/pow/maximum
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // on ties the gradient is split evenly (PyTorch)
Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor pow(const Tensor& x, double p);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // gradient 0
Tensor square(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor tanh(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }

// ---- reductions (functions/reduce.cpp) ----------------------------------------------------
Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// Maximum over dims; the gradient goes to the first maximal element of each reduced slice.
Tensor amax(const Tensor& x, int dim, bool keepdim = false);
// sqrt(sum x^2) over all elements (the Frobenius norm); gradient x / norm (0 at 0).
Tensor norm(const Tensor& x);
// Σ (x − c)² over all elements, c a constant (no gradient flows to it): one fused node, one
// temporary, for the penalties of SPEC 2 (l2sp). Gradient 2 (x − c).
Tensor squared_distance(const Tensor& x, const Tensor& c);
// Σ x² over all elements (l2, the head's β term). Gradient 2x.
Tensor squared_norm(const Tensor& x);

// ---- views and layout (functions/view.cpp) --------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int start_dim = 0, int end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int dim, int64_t index);
Tensor unsqueeze(const Tensor& x, int dim);
Tensor squeeze(const Tensor& x, int dim);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x);
Tensor cat(const std::vector<Tensor>& xs, int dim);

// ---- linear algebra (functions/matmul.cpp) ---------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);  // NumPy semantics, batched with broadcasting
// y = x w^T + b, x [.., in], w [out, in], b [out] or undefined (torch.nn.functional.linear).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- convolution (functions/conv.cpp) ----------------------------------------------------------
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = Tensor(), const Conv2dParams& p = {});

// ---- pooling (functions/pool.cpp) ----------------------------------------------------------------
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- normalisation (functions/batch_norm.cpp) ------------------------------------------------------
// running_mean/running_var are updated in place when training (never differentiated).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// ---- softmax and losses (functions/softmax.cpp, functions/loss.cpp) ---------------------------------
Tensor softmax(const Tensor& x, int dim);
Tensor log_softmax(const Tensor& x, int dim);
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::mean);

// ---- regularisation (functions/dropout.cpp) -----------------------------------------------------------
// Inverted dropout (torch.nn.functional.dropout): identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace tether
