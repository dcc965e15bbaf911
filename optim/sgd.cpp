// SGD with momentum, dampening, nesterov and coupled weight decay: torch.optim.SGD, following
// torch/optim/sgd.py (torch 1.13) _single_tensor_sgd line by line, fused into one loop per tensor:
//
//   d_p = grad + weight_decay * param                 d_p = d_p.add(param, alpha=weight_decay)
//   if momentum != 0:
//     buf = d_p                        (first update) buf = torch.clone(d_p).detach()
//     buf = momentum * buf + (1 - dampening) * d_p    buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
//     d_p = d_p + momentum * buf       (nesterov)     d_p = d_p.add(buf, alpha=momentum)
//     d_p = buf                        (otherwise)
//   param = param - lr * d_p                          param.add_(d_p, alpha=-lr)
//
// Rounding follows PyTorch's CPU kernels too, so f32 runs reproduce PyTorch's f32 arithmetic:
// scalars are rounded to the tensor's type first; `x.add_(y, alpha=a)` is one fused multiply-add
// (ATen's add kernel: vec::fmadd(y, a, x)); nothing else is fused (fp-contract off below).
// On CUDA a whole group is one fused multi-tensor call with the same formulas and rounding
// (optim/cuda/fused_sgd.cu).
#include <cmath>
#include <type_traits>

#include "optim/cuda/fused_updates.h"
#include "optim/optimizer.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace tether::optim {
namespace {

constexpr int64_t kParallelMin = 1 << 16;  // elements; smaller tensors update on one thread

// x + a * y rounded once where the CPU has FMA, as ATen's add(alpha) kernel; twice otherwise.
template <typename T>
inline T add_alpha(T x, T a, T y) {
#ifdef __FMA__
  return std::fma(a, y, x);
#else
  return x + a * y;
#endif
}

// Calls f(std::true_type{}) or f(std::false_type{}): a runtime flag made a compile-time one.
template <typename F>
void with_flag(bool flag, F&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

// The update of one tensor; the flags are template parameters, so each variant is one
// branch-free vectorized loop.
template <typename T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_kernel(int64_t n, T* p, const T* grad, T* buf, T wd, T momentum, T one_minus_dampening, T neg_lr) {
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t k = 0; k < n; ++k) {
    T d = grad[k];
    if constexpr (kDecay) d = add_alpha(d, wd, p[k]);
    if constexpr (kMomentum) {
      const T b = kFirst ? d : add_alpha(buf[k] * momentum, one_minus_dampening, d);
      buf[k] = b;
      d = kNesterov ? add_alpha(d, momentum, b) : b;
    }
    p[k] = add_alpha(p[k], neg_lr, d);
  }
}

class SGD final : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& opts) : Optimizer(std::move(groups)), opts_(opts) {
    // torch.optim.SGD.__init__'s checks (NaN fails them too).
    TETHER_CHECK(opts.lr >= 0, "sgd: invalid learning rate (lr) ", opts.lr, " (must be >= 0)");
    TETHER_CHECK(opts.momentum >= 0, "sgd: invalid momentum value ", opts.momentum, " (must be >= 0)");
    TETHER_CHECK(std::isfinite(opts.dampening), "sgd: invalid dampening value ", opts.dampening);
    TETHER_CHECK(!opts.nesterov || (opts.momentum > 0 && opts.dampening == 0),
                 "sgd: nesterov momentum requires a momentum > 0 and zero dampening (momentum ", opts.momentum,
                 ", dampening ", opts.dampening, ")");
    set_lr(opts.lr);
  }

  std::string name() const override { return "sgd"; }

 protected:
  std::vector<std::string> buffer_names() const override {
    if (opts_.momentum == 0) return {};
    return {"momentum_buffer"};
  }

 private:
  void update(const Tensor& param, const Tensor& grad, ParamState& st, double lr, double weight_decay) const override {
    const bool momentum = opts_.momentum != 0, first = st.step == 0;
    if (momentum && first) st.buffers = {Tensor::empty(param.shape(), param.dtype(), param.device())};
    ++st.step;
    dispatch_float(param.dtype(), "sgd", [&](auto tag) {
      using T = decltype(tag);
      T* buf = momentum ? st.buffers[0].data<T>() : nullptr;
      with_flag(weight_decay != 0, [&](auto decay) {
        with_flag(momentum, [&](auto use_momentum) {
          with_flag(first, [&](auto is_first) {
            with_flag(opts_.nesterov, [&](auto nesterov) {
              sgd_kernel<T, decay(), use_momentum(), is_first(), nesterov()>(
                  param.numel(), param.data<T>(), grad.data<T>(), buf, static_cast<T>(weight_decay),
                  static_cast<T>(opts_.momentum), static_cast<T>(1.0 - opts_.dampening), static_cast<T>(-lr));
            });
          });
        });
      });
    });
  }

  void update_group(const std::vector<Pending>& params, double lr, double weight_decay) const override {
    const bool momentum = opts_.momentum != 0;
    std::vector<cuda::SgdTensor> tensors;
    tensors.reserve(params.size());
    for (const Pending& x : params) {
      ParamState& st = *x.state;
      const bool first = st.step == 0;
      if (momentum && first) st.buffers = {Tensor::empty(x.param.shape(), x.param.dtype(), x.param.device())};
      ++st.step;
      tensors.push_back({x.param, x.grad, momentum ? st.buffers[0] : Tensor(), first});
    }
    cuda::sgd_update(tensors, {lr, weight_decay, opts_.momentum, opts_.dampening, opts_.nesterov});
  }

  SGDOptions opts_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(std::vector<ParamGroup> groups, const SGDOptions& opts) {
  return std::make_unique<SGD>(std::move(groups), opts);
}

}  // namespace tether::optim
