// Penalties Ω(w) of SPEC 2, evaluated on every step on the current weights. Each penalty
// returns its parts as differentiable scalars (so their gradients flow through the same
// autograd as the loss) with names for the log: "omega.S" (the inherited part) and
// "omega.head" (the S̄ part). The trainer adds them to J and multiplies by the --reg-decay
// factor r^epoch through `scale`.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "regularizers/param_sets.h"

namespace tether::reg {

struct PenaltyOptions {
  // {reg, alpha, beta} keeps working (and warning-free) as fields are added.
  PenaltyOptions(std::string reg_ = "none", double alpha_ = 0.0, double beta_ = 0.0)
      : reg(std::move(reg_)), alpha(alpha_), beta(beta_) {}
  std::string reg = "none";  // --reg
  double alpha = 0.0;        // --alpha: coefficient on S
  double beta = 0.0;         // --beta: coefficient on S̄
  std::string fisher;        // --fisher FILE: diagonal Fisher (SPEC 4), for l2sp-fisher and glsp-fisher
  double smooth_eps = 1e-8;  // --smooth-eps: ε of l1sp, glsp, glsp-fisher
};

using Terms = std::vector<std::pair<std::string, Tensor>>;
using Values = std::vector<std::pair<std::string, double>>;

// Where Penalty::add_gradient puts ∇Ω. Null: each parameter's .grad. Otherwise this map,
// keyed by parameter name (e.g. DTNH, which needs g_Ω apart from g_J). Either way a buffer that
// is defined is accumulated into (same shape, dtype and device, contiguous); an undefined one (or
// a missing map entry) is created holding ∇Ω of that parameter (written once, no zero-fill).
using GradTarget = std::map<std::string, Tensor>;

class Penalty {
 public:
  virtual ~Penalty() = default;
  virtual std::string name() const = 0;
  // Ω's parts at the current weights, each already multiplied by its coefficient and `scale`,
  // as differentiable scalars (autograd). The reference the closed form is tested against.
  virtual Terms terms(double scale) const = 0;
  // The closed form (regularizers/sp_kernels.h): adds ∇Ω (coefficients and `scale` included)
  // into .grad or `into`, in one fused pass per tensor (on CUDA: one multi-tensor launch per set
  // and kind, regularizers/cuda/sp_fused.h), and returns the parts with the names and
  // values of terms(scale). The training loop uses this one. The default backpropagates
  // terms(scale) into .grad (for penalties without a closed form; `into` is then unsupported).
  virtual Values add_gradient(double scale, GradTarget* into = nullptr) const;
};

// The penalty named by opts.reg, over `sets` (held by reference: keep them alive).
// "none" returns nullptr. For fnp, kd and delta: only their S̄ part β/2 Σ_S̄ ‖w‖² ("omega.head");
// the feature part is make_feature_penalty's (regularizers/feature_penalty.h). The Fisher penalties read opts.fisher here (load_fisher).
std::unique_ptr<Penalty> make_penalty(const PenaltyOptions& opts, const ParamSets& sets);
const std::vector<std::string>& penalty_names();

// Building blocks, also used by the tests as the closed forms:
// Σ_tensors ‖w‖² and Σ_tensors ‖w − w0‖² as differentiable scalars (0-d, undefined when empty).
Tensor sum_squares(const nn::NamedTensors& params);
Tensor sum_squared_distance(const nn::NamedTensors& params, const std::map<std::string, Tensor>& w0);

// True for the penalties that need --fisher.
bool needs_fisher(const std::string& reg);

// F for every tensor of S, read from a safetensors file keyed by parameter name (other keys,
// e.g. the source model's head, are ignored), cast to each parameter's dtype and device.
// Throws naming the file and the key when a tensor of S is missing, has another shape, or holds
// a negative or non-finite value.
std::map<std::string, Tensor> load_fisher(const std::string& path, const ParamSets& sets);

// Fused per-tensor penalties (regularizers/sp_functions.cpp): 0-d differentiable scalars, the
// gradient flowing to x only (c and F are constants). c undefined means c = 0. Rows are
// SPEC 1's: x viewed as [d0, rest], p = rest.
//   fisher_squared_distance  Σ_j F_j (x_j − c_j)²                               ∇ 2 F (x − c)
//   smooth_l1_distance       Σ_j (√((x_j − c_j)² + ε²) − ε)                       ∇ (x − c) / √(·)
//   group_lasso_distance     Σ_r √p (√(Σ_{j∈r} F_j (x_j − c_j)² + ε²) − ε), F undefined = 1
//                                                                                ∇ √p F (x − c)_r / √(·)_r
//   mars_norm                max_r Σ_{j∈r} |x_j − c_j|   ∇ sign(x − c) on the first maximising row, 0 elsewhere
//   channel_squared_distance Σ_n Σ_c a_c Σ_{h,w} (x_nchw − c_nchw)², x a feature map [N, C, ...]
//                            (SPEC 2's kd/delta sum before its 1/(H·W) and 1/B), a undefined = 1
//                                                                                ∇ 2 a_c (x − c)
Tensor fisher_squared_distance(const Tensor& x, const Tensor& c, const Tensor& f);
Tensor smooth_l1_distance(const Tensor& x, const Tensor& c, double eps);
Tensor group_lasso_distance(const Tensor& x, const Tensor& c, const Tensor& f, double eps);
Tensor mars_norm(const Tensor& x, const Tensor& c);
Tensor channel_squared_distance(const Tensor& x, const Tensor& c, const Tensor& a);

}  // namespace tether::reg
