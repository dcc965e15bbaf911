// Adam and AdamW (with AMSGrad): torch.optim.Adam / AdamW, following torch/optim/adam.py and
// adamw.py (torch 1.13) _single_tensor_adam(w), non-capturable branch, fused into one loop per
// tensor. Per parameter, with step counted from 1 (state_steps[i] += 1 before use):
//
//   Adam:  grad = grad + weight_decay * param          grad = grad.add(param, alpha=weight_decay)
//   AdamW: param = param * (1 - lr * weight_decay)      param.mul_(1 - lr * weight_decay)
//   m = beta1 * m + (1 - beta1) * grad                 exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
//   v = beta2 * v + (1 - beta2) * grad * grad          exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   bias_correction1 = 1 - beta1 ** step               (Python floats: double)
//   bias_correction2 = 1 - beta2 ** step
//   step_size = lr / bias_correction1
//   AMSGrad: vmax = max(vmax, v), used for v below     torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=...)
//   denom = sqrt(v) / sqrt(bias_correction2) + eps     (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//   param = param + (-step_size) * m / denom           param.addcdiv_(exp_avg, denom, value=-step_size)
//
// Scalars are computed in double as in Python, then rounded to the tensor's type as PyTorch's
// kernels do. Rounding follows PyTorch's CPU kernels too, so f32 runs reproduce PyTorch's f32
// arithmetic: `x.add_(y, alpha=a)` is fma(a, y, x) (vec::fmadd), `x.addcmul_(y, z, value=c)` is
// fma(c * y, z, x), `x.addcdiv_(y, z, value=c)` is x + (c * y) / z; nothing else is fused
// (fp-contract off below). On CUDA a whole group is one fused multi-tensor call with the same
// formulas and rounding (optim/cuda/fused_adam.cu).
#include <algorithm>
#include <cmath>
#include <experimental/simd>
#include <type_traits>

#include "optim/cuda/fused_updates.h"
#include "optim/optimizer.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
// GCC 12's _mm512_sqrt_ps/pd (inside std::experimental::sqrt) leave a vector deliberately
// undefined and warn about it (as core/cpu/gemm.cpp notes for Eigen).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tether::optim {
namespace {

namespace stdx = std::experimental;

constexpr int64_t kParallelMin = 1 << 16;  // elements; smaller tensors update on one thread

// a * b + c rounded once where the CPU has FMA (ATen's Vectorized::fmadd), twice otherwise.
template <typename T>
inline T fmadd(T a, T b, T c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// x[j] = sqrt(x[j]), vectorized (IEEE sqrt: exact, as ATen's). A plain std::sqrt loop does not
// vectorize under GCC without -fno-math-errno (errno handling is a branch), and Eigen's float
// sqrt is an approximation under EIGEN_FAST_MATH.
template <typename T>
void sqrt_inplace(T* x, int64_t len) {
  using V = stdx::native_simd<T>;
  int64_t j = 0;
  for (; j + static_cast<int64_t>(V::size()) <= len; j += V::size())
    stdx::sqrt(V(x + j, stdx::element_aligned)).copy_to(x + j, stdx::element_aligned);
  for (; j < len; ++j) x[j] = std::sqrt(x[j]);
}

// Calls f(std::true_type{}) or f(std::false_type{}): a runtime flag made a compile-time one.
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

// The scalars of one update, rounded to the tensor's type.
template <typename T>
struct AdamScalars {
  T weight_decay, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size;
};

// The update of one tensor, in blocks of kBlock elements (threads take blocks): the moments,
// the square roots, then the step. The flags are template parameters, so each loop is
// branch-free and vectorized.
template <typename T, bool kCoupled, bool kDecoupled, bool kAmsgrad>
void adam_kernel(int64_t n, T* p, const T* grad, T* m, T* v, T* vmax, const AdamScalars<T> s) {
  constexpr int64_t kBlock = 1024;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, len = std::min(kBlock, n - lo);
    T root[kBlock];  // sqrt of the second moment the denominator uses
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const int64_t k = lo + j;
      T g = grad[k];
      if constexpr (kCoupled) g = fmadd(s.weight_decay, p[k], g);  // grad.add(param, alpha=wd)
      if constexpr (kDecoupled) p[k] = p[k] * s.decay;             // param.mul_(1 - lr * wd)
      m[k] = fmadd(s.one_minus_beta1, g, m[k] * s.beta1);          // exp_avg.mul_(b1).add_(grad, alpha=1 - b1)
      T vk = fmadd(s.one_minus_beta2 * g, g, v[k] * s.beta2);      // exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
      v[k] = vk;
      if constexpr (kAmsgrad) {                                    // torch.maximum(vmax, v, out=vmax)
        const T mx = vmax[k];
        vk = (vk > mx || vk != vk) ? vk : mx;                      // (a NaN on either side propagates)
        vmax[k] = vk;
      }
      root[j] = vk;
    }
    sqrt_inplace(root, len);
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const int64_t k = lo + j;
      const T denom = root[j] / s.bias_correction2_sqrt + s.eps;  // (v.sqrt() / bc2_sqrt).add_(eps)
      p[k] = p[k] + s.neg_step_size * m[k] / denom;               // param.addcdiv_(m, denom, value=-step_size)
    }
  }
}

class Adam final : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& opts) : Optimizer(std::move(groups)), opts_(opts) {
    // torch.optim.Adam.__init__'s checks (NaN fails them too), except eps: > 0 here, >= 0 there.
    const std::string who = name();
    TETHER_CHECK(opts.lr >= 0, who, ": invalid learning rate (lr) ", opts.lr, " (must be >= 0)");
    TETHER_CHECK(opts.eps > 0, who, ": invalid epsilon value (eps) ", opts.eps, " (must be > 0)");
    TETHER_CHECK(opts.beta1 >= 0 && opts.beta1 < 1, who, ": invalid beta parameter at index 0 (beta1) ", opts.beta1,
                 " (must be in [0, 1))");
    TETHER_CHECK(opts.beta2 >= 0 && opts.beta2 < 1, who, ": invalid beta parameter at index 1 (beta2) ", opts.beta2,
                 " (must be in [0, 1))");
    set_lr(opts.lr);
  }

  std::string name() const override { return opts_.decoupled_weight_decay ? "adamw" : "adam"; }

 protected:
  std::vector<std::string> buffer_names() const override {
    if (opts_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
  }

 private:
  void update(const Tensor& param, const Tensor& grad, ParamState& st, double lr, double weight_decay) const override {
    if (st.step == 0)  // lazy state initialization: zeros like the parameter
      for (size_t b = 0; b < buffer_names().size(); ++b)
        st.buffers.push_back(Tensor::zeros(param.shape(), param.dtype(), param.device()));
    const double step = static_cast<double>(++st.step);  // state_steps[i] += 1; step = step_t.item()
    const double beta1 = opts_.beta1, beta2 = opts_.beta2;
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    const bool decoupled = opts_.decoupled_weight_decay;
    dispatch_float(param.dtype(), "adam", [&](auto tag) {
      using T = decltype(tag);
      const AdamScalars<T> s{static_cast<T>(weight_decay),       static_cast<T>(1 - lr * weight_decay),
                             static_cast<T>(beta1),              static_cast<T>(1 - beta1),
                             static_cast<T>(beta2),              static_cast<T>(1 - beta2),
                             static_cast<T>(bias_correction2_sqrt), static_cast<T>(opts_.eps),
                             static_cast<T>(-step_size)};
      T* vmax = opts_.amsgrad ? st.buffers[2].data<T>() : nullptr;
      with_flag(!decoupled && weight_decay != 0, [&](auto coupled) {
        with_flag(decoupled, [&](auto decoupled_) {
          with_flag(opts_.amsgrad, [&](auto amsgrad) {
            adam_kernel<T, coupled(), decoupled_(), amsgrad()>(param.numel(), param.data<T>(), grad.data<T>(),
                                                               st.buffers[0].data<T>(), st.buffers[1].data<T>(),
                                                               vmax, s);
          });
        });
      });
    });
  }

  void update_group(const std::vector<Pending>& params, double lr, double weight_decay) const override {
    std::vector<cuda::AdamTensor> tensors;
    tensors.reserve(params.size());
    for (const Pending& x : params) {
      ParamState& st = *x.state;
      if (st.step == 0)  // lazy state initialization, as update()
        for (size_t b = 0; b < buffer_names().size(); ++b)
          st.buffers.push_back(Tensor::zeros(x.param.shape(), x.param.dtype(), x.param.device()));
      ++st.step;
      tensors.push_back(
          {x.param, x.grad, st.buffers[0], st.buffers[1], opts_.amsgrad ? st.buffers[2] : Tensor(), st.step});
    }
    cuda::adam_update(tensors, {lr, weight_decay, opts_.beta1, opts_.beta2, opts_.eps, opts_.amsgrad,
                                opts_.decoupled_weight_decay});
  }

  AdamOptions opts_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adam(std::vector<ParamGroup> groups, const AdamOptions& opts) {
  return std::make_unique<Adam>(std::move(groups), opts);
}

}  // namespace tether::optim
