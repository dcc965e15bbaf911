// SGD's update (optim/sgd.cpp) over many parameters in one multi-tensor launch per dtype. Per
// element, with the scalars rounded to the tensor's type and every operation rounded as sgd.cpp
// rounds it (rn:: intrinsics; `x.add_(y, alpha=a)` is fma(a, y, x)):
//   d = fma(wd, p, g)                                        (weight decay)
//   b = first ? d : fma(1 - dampening, d, buf * momentum)    (momentum; buf = b)
//   d = nesterov ? fma(momentum, b, d) : b
//   p = fma(-lr, d, p)
// `first` is per tensor (parameters may have started at different steps); the group's flags are
// template parameters, as on the CPU.
#include <type_traits>

#include "core/cuda/multi_tensor.cuh"
#include "core/cuda/rounding.cuh"
#include "optim/cuda/fused_updates.h"

namespace tether::optim::cuda {
namespace {

namespace mt = tether::cuda::mt;
namespace rn = tether::cuda::rn;

struct SgdExtra {
  int first;
};
using SgdPack = mt::Pack<3, SgdExtra>;  // param, grad, momentum buffer

template <typename T, bool kDecay, bool kMomentum, bool kNesterov>
struct SgdOp {
  T wd, momentum, one_minus_dampening, neg_lr;

  __device__ void operator()(const SgdPack& pack, int t, int64_t chunk) const {
    T* p = static_cast<T*>(pack.ptr[0][t]);
    const T* grad = static_cast<const T*>(pack.ptr[1][t]);
    T* buf = static_cast<T*>(pack.ptr[2][t]);
    const bool first = pack.extra[t].first != 0;
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) {
      T d = grad[k];
      if constexpr (kDecay) d = rn::fma(wd, p[k], d);
      if constexpr (kMomentum) {
        const T b = first ? d : rn::fma(one_minus_dampening, d, rn::mul(buf[k], momentum));
        buf[k] = b;
        d = kNesterov ? rn::fma(momentum, b, d) : b;
      }
      p[k] = rn::fma(neg_lr, d, p[k]);
    }
  }
};

// Calls f(std::true_type{}) or f(std::false_type{}): a runtime flag made a compile-time one.
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

}  // namespace

void sgd_update(const std::vector<SgdTensor>& tensors, const SgdScalars& s) {
  if (tensors.empty()) return;
  const Device device = tensors.front().param.device();
  const bool momentum = s.momentum != 0;
  for (const SgdTensor& x : tensors) {
    TETHER_CHECK(x.param.device() == device && x.grad.device() == device && x.param.is_contiguous() &&
                     x.grad.is_contiguous() && x.grad.dtype() == x.param.dtype() && x.grad.numel() == x.param.numel(),
                 "sgd (CUDA): parameter ", x.param.str(), " and gradient ", x.grad.str(),
                 " must be contiguous, of one dtype and size, on ", device.str());
    TETHER_CHECK(!momentum || (x.momentum_buffer.defined() && x.momentum_buffer.device() == device &&
                               x.momentum_buffer.is_contiguous() && x.momentum_buffer.dtype() == x.param.dtype() &&
                               x.momentum_buffer.numel() == x.param.numel()),
                 "sgd (CUDA): parameter ", x.param.str(), " needs a matching momentum buffer");
  }
  cudaStream_t stream = tether::cuda::stream(device.index);
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<mt::Item<3, SgdExtra>> items;
    for (const SgdTensor& x : tensors) {
      if (x.param.dtype() != dtype) continue;
      mt::Item<3, SgdExtra> item;
      item.ptr[0] = x.param.raw_data();
      item.ptr[1] = x.grad.raw_data();
      item.ptr[2] = momentum ? x.momentum_buffer.raw_data() : nullptr;
      item.units = x.param.numel();
      item.extra.first = x.first ? 1 : 0;
      items.push_back(item);
    }
    if (items.empty()) continue;
    dispatch_float(dtype, "sgd", [&](auto tag) {
      using T = decltype(tag);
      with_flag(s.weight_decay != 0, [&](auto decay) {
        with_flag(momentum, [&](auto use_momentum) {
          with_flag(s.nesterov, [&](auto nesterov) {
            const SgdOp<T, decay(), use_momentum(), nesterov()> op{static_cast<T>(s.weight_decay),
                                                                    static_cast<T>(s.momentum),
                                                                    static_cast<T>(1.0 - s.dampening),
                                                                    static_cast<T>(-s.lr)};
            mt::launch(items, stream, op, "sgd_update");
          });
        });
      });
    });
  }
}

}  // namespace tether::optim::cuda
