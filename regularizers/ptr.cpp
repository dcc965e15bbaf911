// SPEC 6 (regularizers/ptr.h).
#include "regularizers/ptr.h"

#include <cmath>

#include "autograd/engine.h"
#include "autograd/function.h"
#include "autograd/ops.h"
#include "core/check.h"

namespace tether::reg {
namespace {

// ∂L_ptr/∂rep = c / (B·D), kept from the forward; the incoming scalar scales it.
struct PseudoTaskLossBackward : Node {
  Tensor grad_rep;
  std::vector<Tensor> backward(const Tensor& g) override { return {ops::mul_scalar(grad_rep, g.item<double>())}; }
  std::string name() const override { return "PseudoTaskLossBackward"; }
  void release_saved() override { grad_rep = Tensor(); }
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// ‖x_i‖ for every row of a [B, D] tensor, times `scale`.
std::vector<double> row_norms(const Tensor& x, double scale) {
  const Tensor sq = ops::sum(ops::unary(ops::Unary::square, x), {1});
  std::vector<double> out = sq.to_vector<double>();
  for (double& v : out) v = std::sqrt(v) * scale;
  return out;
}

}  // namespace

void validate(const PtrOptions& o) {
  TETHER_CHECK(std::isfinite(o.ratio) && o.ratio > 0, "--ptr-ratio must be > 0 and finite, got ", o.ratio);
  TETHER_CHECK(std::isfinite(o.mean) && o.mean >= 0, "--ptr-mean must be >= 0 and finite, got ", o.mean);
  TETHER_CHECK(o.loss == "sml1" || o.loss == "l2", "--ptr-loss must be sml1 or l2, got '", o.loss, "'");
  TETHER_CHECK(!std::isnan(o.threshold), "--ptr-threshold must be a number (inf: on from the first step)");
}

Tensor ptr_targets(const Tensor& like, double mean, Generator& gen) {
  Tensor t = Tensor::zeros(like.shape(), like.dtype(), like.device());
  if (mean > 0) ops::uniform_(t, 0.0, 2.0 * mean, gen);
  return t;
}

Tensor pseudo_task_loss(const Tensor& rep, const Tensor& targets, const std::string& loss,
                        std::vector<double>* row_grad_norms) {
  TETHER_CHECK(rep.dim() == 2, "PtR: rep must be [batch, dims], got ", shape_str(rep.shape()));
  TETHER_CHECK(targets.shape() == rep.shape(), "PtR: targets ", shape_str(targets.shape()), " for rep ",
               shape_str(rep.shape()));
  const double n = static_cast<double>(rep.numel());
  const Tensor d = ops::binary(ops::Binary::sub, rep.detach(), targets);
  const Tensor c = loss == "l2" ? d : ops::clamp(d, -1.0, 1.0);
  const double value = (ops::dot(c, d) - 0.5 * ops::dot(c, c)) / n;  // Σ f(d) / (B·D), f = c·d − ½c²
  if (row_grad_norms) *row_grad_norms = row_norms(c, 1.0 / n);
  Tensor y = Tensor::scalar(value, rep.dtype(), rep.device());
  if (needs_grad({rep})) {
    auto node = std::make_shared<PseudoTaskLossBackward>();
    node->grad_rep = ops::mul_scalar(c, 1.0 / n);
    record(y, node, {rep});
  }
  return y;
}

PtrStep ptr_step(const Tensor& rep, const Tensor& J, const PtrOptions& opts, Generator& gen) {
  PtrStep step;
  const Tensor targets = ptr_targets(rep, opts.mean, gen);
  std::vector<double> g_ptr;
  const Tensor l_ptr = pseudo_task_loss(rep, targets, opts.loss, &g_ptr);
  // ∂J/∂rep on J's own graph, kept for the full backward that follows.
  const Tensor dj = tether::grad({J}, {rep}, {}, /*retain_graph=*/true).at(0);
  TETHER_CHECK(dj.defined(), "PtR: the loss does not depend on rep");
  step.mean_g_ce = mean_of(row_norms(dj, 1.0));
  step.mean_g_ptr = mean_of(g_ptr);
  step.loss = l_ptr.item<double>();
  // w = mean G_ce / (mean G_ptr · R), a constant; 0 when the pseudo task has no gradient (rep = t).
  step.w = step.mean_g_ptr > 0 ? step.mean_g_ce / (step.mean_g_ptr * opts.ratio) : 0.0;
  step.term = l_ptr * step.w;
  return step;
}

}  // namespace tether::reg
