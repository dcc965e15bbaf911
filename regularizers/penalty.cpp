// SPEC 2 penalties: l2, l2sp, l2sp-fisher, l1sp, glsp, glsp-fisher, mars-sp, and the S̄ part of
// fnp, kd and delta (their feature part needs the forward pass: regularizers/feature_penalty.h).
// terms() (autograd) uses the fused functions of sp_functions.cpp; add_gradient() (the closed
// form the training loop uses) the kernels of sp_kernels.cpp.
#include "regularizers/penalty.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "regularizers/sp_kernels.h"

namespace tether::reg {
namespace {

Tensor add_defined(const Tensor& total, const Tensor& term) { return total.defined() ? total + term : term; }

const Tensor& w0_of(const ParamSets& sets, const std::string& name) {
  auto it = sets.w0.find(name);
  TETHER_CHECK(it != sets.w0.end(), "no pretrained value (w0) for parameter '", name, "'");
  return it->second;
}

// add_gradient's destination for parameter `p` (see GradTarget) as a kernel output with factor k:
// an existing buffer is accumulated into; otherwise a new one is created and overwritten.
kernels::GradOut grad_out(const std::string& name, const Tensor& p, double k, GradTarget* into) {
  Tensor g;
  if (into) {
    auto it = into->find(name);
    if (it != into->end()) g = it->second;
  } else {
    g = p.grad();
  }
  if (g.defined()) return {g, k, false};
  g = Tensor::empty(p.shape(), p.dtype(), p.device());
  if (into) (*into)[name] = g;
  else p.set_grad(g);
  return {g, k, true};
}

// Σ over `set` of `kind`'s value, each tensor's centre and Fisher weights from operands(name, w)
// (a pair; undefined: 0 and 1), each tensor's gradient times k going to its add_gradient
// destination. One kernels::values call: CUDA tensors in one fused launch per kind.
template <typename OperandsOf>
double over_set(const nn::NamedTensors& set, double k, GradTarget* into, kernels::Kind kind, double eps,
                OperandsOf operands) {
  std::vector<kernels::Operands> items;
  items.reserve(set.size());
  for (const auto& [name, w] : set) {
    auto [c, f] = operands(name, w);
    items.push_back({w, c, f, grad_out(name, w, k, into)});
  }
  double total = 0;
  for (double value : kernels::values(kind, items, eps)) total += value;
  return total;
}

// No centre, no Fisher weights: the head's operands.
std::pair<Tensor, Tensor> toward_zero(const std::string&, const Tensor&) { return {}; }

// β/2 Σ_S̄ ‖w‖², the head part of every row but mars-sp, as "omega.head".
void add_head_l2(const ParamSets& sets, double beta, double scale, GradTarget* into, Values& out) {
  if (beta == 0 || sets.head.empty()) return;
  const double k = 0.5 * beta * scale;
  const double total = over_set(sets.head, k, into, kernels::Kind::squared_distance, 0.0, toward_zero);
  out.emplace_back("omega.head", k * total);
}

// SPEC 2, `l2`:   α/2 Σ_S ‖w‖² + β/2 Σ_S̄ ‖w‖²
// SPEC 2, `l2sp`: α/2 Σ_S ‖w − w0‖² + β/2 Σ_S̄ ‖w‖²
// SPEC 2, `fnp`, `kd`, `delta`: their β/2 Σ_S̄ ‖w‖² (built with α = 0; α is the feature part's)
class L2Penalty : public Penalty {
 public:
  L2Penalty(const PenaltyOptions& opts, const ParamSets& sets, bool toward_w0)
      : opts_(opts), sets_(sets), toward_w0_(toward_w0) {}
  std::string name() const override { return opts_.reg; }
  Terms terms(double scale) const override {
    Terms out;
    if (opts_.alpha != 0 && !sets_.inherited.empty()) {
      Tensor s = toward_w0_ ? sum_squared_distance(sets_.inherited, sets_.w0) : sum_squares(sets_.inherited);
      out.emplace_back("omega.S", s * (0.5 * opts_.alpha * scale));
    }
    if (opts_.beta != 0 && !sets_.head.empty())
      out.emplace_back("omega.head", sum_squares(sets_.head) * (0.5 * opts_.beta * scale));
    return out;
  }
  Values add_gradient(double scale, GradTarget* into) const override {
    Values out;
    if (opts_.alpha != 0 && !sets_.inherited.empty()) {
      const double k = 0.5 * opts_.alpha * scale;
      const double total = over_set(sets_.inherited, k, into, kernels::Kind::squared_distance, 0.0,
                                    [&](const std::string& name, const Tensor&) {
                                      return std::pair{toward_w0_ ? w0_of(sets_, name) : Tensor(), Tensor()};
                                    });
      out.emplace_back("omega.S", k * total);
    }
    add_head_l2(sets_, opts_.beta, scale, into, out);
    return out;
  }

 private:
  PenaltyOptions opts_;
  const ParamSets& sets_;
  bool toward_w0_;
};

// The rest of SPEC 2's weight-space rows (Δ = w − w0, ε = --smooth-eps):
//   l2sp-fisher  α/2 Σ_{j∈S} F_j Δ_j²                             + β/2 Σ_S̄ ‖w‖²
//   l1sp         α Σ_{j∈S} (√(Δ_j² + ε²) − ε)                      + β/2 Σ_S̄ ‖w‖²
//   glsp         α Σ_{rows r of S} √p_r (√(‖Δ_r‖² + ε²) − ε)       + β/2 Σ_S̄ ‖w‖²
//   glsp-fisher  α Σ_r √p_r (√(Σ_{j∈r} F_j Δ_j² + ε²) − ε)         + β/2 Σ_S̄ ‖w‖²
//   mars-sp      α Σ_{W∈S} ‖ΔW‖_mars + β Σ_{V∈S̄} ‖V‖_mars
class SpPenalty : public Penalty {
 public:
  SpPenalty(const PenaltyOptions& opts, const ParamSets& sets) : opts_(opts), sets_(sets) {
    if (needs_fisher(opts.reg)) fisher_ = load_fisher(opts.fisher, sets);
  }
  std::string name() const override { return opts_.reg; }
  Terms terms(double scale) const override {
    Terms out;
    const std::string& reg = opts_.reg;
    if (opts_.alpha != 0 && !sets_.inherited.empty()) {
      Tensor total;
      for (const auto& [name, w] : sets_.inherited) {
        auto it = sets_.w0.find(name);
        TETHER_CHECK(it != sets_.w0.end(), "no pretrained value (w0) for parameter '", name, "'");
        const Tensor& w0 = it->second;
        Tensor t;
        if (reg == "l2sp-fisher")
          t = fisher_squared_distance(w, w0, fisher_.at(name));
        else if (reg == "l1sp")
          t = smooth_l1_distance(w, w0, opts_.smooth_eps);
        else if (reg == "glsp")
          t = group_lasso_distance(w, w0, Tensor(), opts_.smooth_eps);
        else if (reg == "glsp-fisher")
          t = group_lasso_distance(w, w0, fisher_.at(name), opts_.smooth_eps);
        else
          t = mars_norm(w, w0);
        total = add_defined(total, t);
      }
      const double coef = reg == "l2sp-fisher" ? 0.5 * opts_.alpha : opts_.alpha;
      out.emplace_back("omega.S", total * (coef * scale));
    }
    if (opts_.beta != 0 && !sets_.head.empty()) {
      if (reg == "mars-sp") {
        Tensor total;
        for (const auto& [name, v] : sets_.head) total = add_defined(total, mars_norm(v, Tensor()));
        out.emplace_back("omega.head", total * (opts_.beta * scale));
      } else {
        out.emplace_back("omega.head", sum_squares(sets_.head) * (0.5 * opts_.beta * scale));
      }
    }
    return out;
  }
  Values add_gradient(double scale, GradTarget* into) const override {
    Values out;
    const std::string& reg = opts_.reg;
    const double eps = opts_.smooth_eps;
    if (opts_.alpha != 0 && !sets_.inherited.empty()) {
      const double k = (reg == "l2sp-fisher" ? 0.5 : 1.0) * opts_.alpha * scale;
      const kernels::Kind kind = reg == "l2sp-fisher"                    ? kernels::Kind::squared_distance
                                 : reg == "l1sp"                         ? kernels::Kind::smooth_l1
                                 : reg == "glsp" || reg == "glsp-fisher" ? kernels::Kind::group_lasso
                                                                         : kernels::Kind::mars;
      const double total = over_set(sets_.inherited, k, into, kind, eps, [&](const std::string& name, const Tensor&) {
        return std::pair{w0_of(sets_, name), needs_fisher(reg) ? fisher_.at(name) : Tensor()};
      });
      out.emplace_back("omega.S", k * total);
    }
    if (reg != "mars-sp") {
      add_head_l2(sets_, opts_.beta, scale, into, out);
    } else if (opts_.beta != 0 && !sets_.head.empty()) {
      const double k = opts_.beta * scale;
      const double total = over_set(sets_.head, k, into, kernels::Kind::mars, 0.0, toward_zero);
      out.emplace_back("omega.head", k * total);
    }
    return out;
  }

 private:
  PenaltyOptions opts_;
  const ParamSets& sets_;
  std::map<std::string, Tensor> fisher_;
};

}  // namespace

Values Penalty::add_gradient(double scale, GradTarget* into) const {
  TETHER_CHECK(into == nullptr, "penalty ", name(), ": no closed-form gradient, so it can only be added to .grad");
  Values out;
  Tensor total;
  for (const auto& [part, t] : terms(scale)) {
    out.emplace_back(part, t.item<double>());
    total = add_defined(total, t);
  }
  if (total.defined() && total.requires_grad()) total.backward();
  return out;
}

const std::vector<std::string>& penalty_names() {
  static const std::vector<std::string> names{"none", "l2", "l2sp", "l2sp-fisher", "l1sp", "glsp", "glsp-fisher",
                                              "mars-sp", "fnp", "kd", "delta"};
  return names;
}

bool needs_fisher(const std::string& reg) { return reg == "l2sp-fisher" || reg == "glsp-fisher"; }

std::unique_ptr<Penalty> make_penalty(const PenaltyOptions& opts, const ParamSets& sets) {
  const auto& names = penalty_names();
  if (std::find(names.begin(), names.end(), opts.reg) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    TETHER_FAIL("--reg: unknown penalty '", opts.reg, "' (known: ", list, ")");
  }
  TETHER_CHECK(opts.alpha >= 0, "--alpha must be >= 0, got ", opts.alpha);
  TETHER_CHECK(opts.beta >= 0, "--beta must be >= 0, got ", opts.beta);
  TETHER_CHECK(std::isfinite(opts.smooth_eps) && opts.smooth_eps > 0, "--smooth-eps must be > 0 and finite, got ",
               opts.smooth_eps);
  TETHER_CHECK(!needs_fisher(opts.reg) || !opts.fisher.empty(), "--reg ", opts.reg,
               " needs --fisher FILE (the diagonal Fisher of `tether fisher`)");
  if (opts.reg == "none") return nullptr;
  if (opts.reg == "l2" || opts.reg == "l2sp") return std::make_unique<L2Penalty>(opts, sets, opts.reg == "l2sp");
  if (opts.reg == "fnp" || opts.reg == "kd" || opts.reg == "delta") {
    PenaltyOptions head_only = opts;  // the feature part is make_feature_penalty's
    head_only.alpha = 0;
    return std::make_unique<L2Penalty>(head_only, sets, false);
  }
  return std::make_unique<SpPenalty>(opts, sets);
}

Tensor sum_squares(const nn::NamedTensors& params) {
  Tensor total;
  for (const auto& [name, w] : params) total = add_defined(total, squared_norm(w));
  return total;
}

Tensor sum_squared_distance(const nn::NamedTensors& params, const std::map<std::string, Tensor>& w0) {
  Tensor total;
  for (const auto& [name, w] : params) {
    auto it = w0.find(name);
    TETHER_CHECK(it != w0.end(), "no pretrained value (w0) for parameter '", name, "'");
    total = add_defined(total, squared_distance(w, it->second));
  }
  return total;
}

}  // namespace tether::reg
