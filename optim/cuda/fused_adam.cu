// Adam / AdamW with AMSGrad (optim/adam.cpp) over many parameters in one multi-tensor launch per
// dtype. Per element, rounded as adam.cpp rounds it (rn:: intrinsics: `add_(y, alpha=a)` is
// fma(a, y, x), `addcmul_(y, z, value=c)` is fma(c * y, z, x), `addcdiv_` is x + (c * y) / z):
//   g = fma(wd, p, g)                        (Adam's coupled weight decay)
//   p = p * (1 - lr * wd)                    (AdamW's decoupled decay)
//   m = fma(1 - beta1, g, m * beta1)
//   v = fma((1 - beta2) * g, g, v * beta2)
//   vmax = max(vmax, v), NaN propagating     (AMSGrad; the denominator then uses vmax)
//   p = p + (-step_size * m) / (sqrt(v) / bias_correction2_sqrt + eps)
// step_size and bias_correction2_sqrt depend on each parameter's own step count: computed on the
// host in double as adam.cpp does, rounded to the tensor's type, passed per tensor.
#include <cmath>
#include <type_traits>

#include "core/cuda/multi_tensor.cuh"
#include "core/cuda/rounding.cuh"
#include "optim/cuda/fused_updates.h"

namespace tether::optim::cuda {
namespace {

namespace mt = tether::cuda::mt;
namespace rn = tether::cuda::rn;

struct AdamExtra {
  double neg_step_size, bias_correction2_sqrt;  // rounded to T in the kernel (exact: they are T values)
};
using AdamPack = mt::Pack<5, AdamExtra>;  // param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq

template <typename T, bool kCoupled, bool kDecoupled, bool kAmsgrad>
struct AdamOp {
  T weight_decay, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps;

  __device__ void operator()(const AdamPack& pack, int t, int64_t chunk) const {
    T* p = static_cast<T*>(pack.ptr[0][t]);
    const T* grad = static_cast<const T*>(pack.ptr[1][t]);
    T* m = static_cast<T*>(pack.ptr[2][t]);
    T* v = static_cast<T*>(pack.ptr[3][t]);
    T* vmax = static_cast<T*>(pack.ptr[4][t]);
    const T neg_step_size = static_cast<T>(pack.extra[t].neg_step_size);
    const T bc2_sqrt = static_cast<T>(pack.extra[t].bias_correction2_sqrt);
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) {
      T g = grad[k];
      T pk = p[k];
      if constexpr (kCoupled) g = rn::fma(weight_decay, pk, g);
      if constexpr (kDecoupled) pk = rn::mul(pk, decay);
      const T mk = rn::fma(one_minus_beta1, g, rn::mul(m[k], beta1));
      m[k] = mk;
      T vk = rn::fma(rn::mul(one_minus_beta2, g), g, rn::mul(v[k], beta2));
      v[k] = vk;
      if constexpr (kAmsgrad) {
        const T mx = vmax[k];
        vk = (vk > mx || vk != vk) ? vk : mx;
        vmax[k] = vk;
      }
      const T denom = rn::add(rn::div(rn::sqrt(vk), bc2_sqrt), eps);
      p[k] = rn::add(pk, rn::div(rn::mul(neg_step_size, mk), denom));
    }
  }
};

template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

bool matches(const Tensor& buffer, const Tensor& param) {
  return buffer.defined() && buffer.device() == param.device() && buffer.is_contiguous() &&
         buffer.dtype() == param.dtype() && buffer.numel() == param.numel();
}

}  // namespace

void adam_update(const std::vector<AdamTensor>& tensors, const AdamScalars& s) {
  if (tensors.empty()) return;
  const Device device = tensors.front().param.device();
  for (const AdamTensor& x : tensors) {
    TETHER_CHECK(x.param.device() == device && x.param.is_contiguous() && matches(x.grad, x.param),
                 "adam (CUDA): parameter ", x.param.str(), " and gradient ", x.grad.str(),
                 " must be contiguous, of one dtype and size, on ", device.str());
    TETHER_CHECK(matches(x.exp_avg, x.param) && matches(x.exp_avg_sq, x.param) &&
                     (!s.amsgrad || matches(x.max_exp_avg_sq, x.param)),
                 "adam (CUDA): parameter ", x.param.str(), " needs matching state buffers");
    TETHER_CHECK(x.step >= 1, "adam (CUDA): step count ", x.step, " (must be >= 1)");
  }
  const double lr = s.lr, wd = s.weight_decay, beta1 = s.beta1, beta2 = s.beta2;
  cudaStream_t stream = tether::cuda::stream(device.index);
  for (DType dtype : {DType::f32, DType::f64}) {
    dispatch_float(dtype, "adam", [&](auto tag) {
      using T = decltype(tag);
      std::vector<mt::Item<5, AdamExtra>> items;
      for (const AdamTensor& x : tensors) {
        if (x.param.dtype() != dtype) continue;
        // adam.cpp's scalars, in double from the parameter's own step count.
        const double step = static_cast<double>(x.step);
        const double bias_correction1 = 1 - std::pow(beta1, step);
        const double bias_correction2 = 1 - std::pow(beta2, step);
        const double step_size = lr / bias_correction1;
        const double bias_correction2_sqrt = std::sqrt(bias_correction2);
        mt::Item<5, AdamExtra> item;
        item.ptr[0] = x.param.raw_data();
        item.ptr[1] = x.grad.raw_data();
        item.ptr[2] = x.exp_avg.raw_data();
        item.ptr[3] = x.exp_avg_sq.raw_data();
        item.ptr[4] = s.amsgrad ? x.max_exp_avg_sq.raw_data() : nullptr;
        item.units = x.param.numel();
        item.extra = {static_cast<double>(static_cast<T>(-step_size)),
                      static_cast<double>(static_cast<T>(bias_correction2_sqrt))};
        items.push_back(item);
      }
      if (items.empty()) return;
      const bool decoupled = s.decoupled_weight_decay;
      with_flag(!decoupled && wd != 0, [&](auto coupled) {
        with_flag(decoupled, [&](auto decoupled_) {
          with_flag(s.amsgrad, [&](auto amsgrad) {
            const AdamOp<T, coupled(), decoupled_(), amsgrad()> op{
                static_cast<T>(wd),    static_cast<T>(1 - lr * wd), static_cast<T>(beta1),
                static_cast<T>(1 - beta1), static_cast<T>(beta2),   static_cast<T>(1 - beta2),
                static_cast<T>(s.eps)};
            mt::launch(items, stream, op, "adam_update");
          });
        });
      });
    });
  }
}

}  // namespace tether::optim::cuda
