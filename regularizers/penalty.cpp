// SPEC 2 penalties: l2 and l2sp (the other rows of the table plug into make_penalty).
#include "regularizers/penalty.h"

#include <algorithm>

namespace tether::reg {
namespace {

Tensor add_defined(const Tensor& total, const Tensor& term) { return total.defined() ? total + term : term; }

// SPEC 2, `l2`:   α/2 Σ_S ‖w‖² + β/2 Σ_S̄ ‖w‖²
// SPEC 2, `l2sp`: α/2 Σ_S ‖w − w0‖² + β/2 Σ_S̄ ‖w‖²
class L2Penalty : public Penalty {
 public:
  L2Penalty(const PenaltyOptions& opts, const ParamSets& sets, bool toward_w0)
      : opts_(opts), sets_(sets), toward_w0_(toward_w0) {}
  std::string name() const override { return toward_w0_ ? "l2sp" : "l2"; }
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

 private:
  PenaltyOptions opts_;
  const ParamSets& sets_;
  bool toward_w0_;
};

}  // namespace

const std::vector<std::string>& penalty_names() {
  static const std::vector<std::string> names{"none", "l2", "l2sp"};
  return names;
}

std::unique_ptr<Penalty> make_penalty(const PenaltyOptions& opts, const ParamSets& sets) {
  const auto& names = penalty_names();
  if (std::find(names.begin(), names.end(), opts.reg) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    TETHER_FAIL("--reg: unknown penalty '", opts.reg, "' (known: ", list, ")");
  }
  TETHER_CHECK(opts.alpha >= 0, "--alpha must be >= 0, got ", opts.alpha);
  TETHER_CHECK(opts.beta >= 0, "--beta must be >= 0, got ", opts.beta);
  if (opts.reg == "none") return nullptr;
  return std::make_unique<L2Penalty>(opts, sets, opts.reg == "l2sp");
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
