// CPU kernels: the same signatures as the compute ops of core/ops.h (documented there),
// reached only through the op front. One file per family: copy, elementwise, reduce, gemm,
// conv, pool, batch_norm, softmax (+ cross-entropy), random.
#pragma once
#include "core/ops.h"

namespace tether::cpu {
using ops::Binary;
using ops::Conv2dParams;
using ops::Pool2dParams;
using ops::Reduction;
using ops::Unary;

// copy.cpp
void copy_(const Tensor& dst, const Tensor& src);  // same device (CPU), any strides and dtypes
void fill_(const Tensor& dst, double value);

// elementwise.cpp
Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor pow_scalar(const Tensor& x, double p);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor unary_backward(Unary op, const Tensor& grad, const Tensor& x, const Tensor& y);
Tensor clamp_backward(const Tensor& grad, const Tensor& x, double lo, double hi);
void axpy_(const Tensor& y, double alpha, const Tensor& x);
void scale_(const Tensor& y, double s);

// reduce.cpp
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim);
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim);
Tensor amax(const Tensor& x, const std::vector<int>& dims, bool keepdim);
Tensor argmax(const Tensor& x, int dim, bool keepdim);
double sum_all(const Tensor& x);
double dot(const Tensor& a, const Tensor& b);
double norm(const Tensor& x, double p);

// gemm.cpp
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
          const Tensor& c);
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);

// conv.cpp
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                          const Tensor& grad_x, bool accumulate);
void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p,
                            const Tensor& grad_w, bool accumulate);
void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate);

// pool.cpp
Tensor max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor* indices);
void max_pool2d_backward(const Tensor& grad_y, const Tensor& indices, const Tensor& grad_x,
                         bool accumulate);
Tensor avg_pool2d_forward(const Tensor& x, const Pool2dParams& p);
void avg_pool2d_backward(const Tensor& grad_y, const Pool2dParams& p, const Tensor& grad_x,
                         bool accumulate);
Tensor adaptive_avg_pool2d_forward(const Tensor& x, int64_t out_h, int64_t out_w);
void adaptive_avg_pool2d_backward(const Tensor& grad_y, const Tensor& grad_x, bool accumulate);

// batch_norm.cpp
Tensor batch_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, bool training,
                          double momentum, double eps, Tensor* save_mean, Tensor* save_invstd);
void batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         bool accumulate);

// softmax.cpp
Tensor softmax(const Tensor& x, int dim);
Tensor log_softmax(const Tensor& x, int dim);
void softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                      bool accumulate);
void log_softmax_backward(const Tensor& grad_y, const Tensor& y, int dim, const Tensor& grad_x,
                          bool accumulate);
Tensor cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing,
                             Reduction reduction, Tensor* log_probs);
void cross_entropy_backward(const Tensor& grad_loss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction reduction, const Tensor& grad_logits,
                            bool accumulate);

// random.cpp
void uniform_(const Tensor& t, double lo, double hi, Generator& gen);
void normal_(const Tensor& t, double mean, double std, Generator& gen);
void bernoulli_(const Tensor& t, double p, Generator& gen);
Tensor dropout_mask(const Shape& shape, double p, DType dtype, Generator& gen);

}  // namespace tether::cpu
