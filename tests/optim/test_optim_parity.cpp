// Optimizers and lr schedules against PyTorch (tests/parity/ref_optim.py): SPEC 8, "PyTorch's
// update formulas exactly".
// - SGD (plain, momentum, nesterov, weight decay, dampening), Adam (plain, weight decay,
//   amsgrad with other betas and eps), AdamW (weight decay, amsgrad): two groups with different
//   lr_mult and weight decay, the lr changed between steps, one parameter skipped for a step.
//   Every parameter after every step, and the final optimizer state (buffers by name, Adam's
//   per-parameter step counts). Tolerances, relative (max_rel_err below): f64 1e-12, f32 1e-6.
//   Measured on the development machine (AVX-512, Debian's torch 1.13): 0 in both, bitwise
//   equal, since the kernels round as ATen's do (fused multiply-adds where ATen fuses).
// - Schedules: torch's MultiStepLR / ExponentialLR / CosineAnnealingLR / LambdaLR (const), with
//   warmup as SequentialLR(LinearLR, main), stepped per iteration for 30 iterations: 1e-12
//   relative (torch steps recursively, tether uses the closed forms).
#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "tests/parity/parity_util.h"

using namespace tether;
using nlohmann::json;

namespace {

// Largest |got - want| / (|want| + max |want|): the error relative to the element, floored at
// the tensor's scale. The floor matters only where an update cancels most of a parameter's
// value, where one rounding of the operands (an FMA here and not there) is a large fraction of
// the small result; on this build both frameworks round identically and the error is 0.
double max_rel_err(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  double scale = 0, worst = 0;
  for (double x : b) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    const double r = d == 0 ? 0 : d / (std::abs(b[i]) + scale);
    if (!(r <= worst)) worst = std::isnan(r) ? INFINITY : r;
  }
  return worst;
}

std::unique_ptr<optim::Optimizer> make(const json& cfg, std::vector<optim::ParamGroup> groups, double lr) {
  const std::string kind = cfg["opt"];
  if (kind == "sgd")
    return optim::make_sgd(std::move(groups), {.lr = lr,
                                               .momentum = cfg.value("momentum", 0.0),
                                               .dampening = cfg.value("dampening", 0.0),
                                               .nesterov = cfg.value("nesterov", false)});
  const std::vector<double> betas = cfg.value("betas", std::vector<double>{0.9, 0.999});
  return optim::make_adam(std::move(groups), {.lr = lr,
                                              .beta1 = betas[0],
                                              .beta2 = betas[1],
                                              .eps = cfg.value("eps", 1e-8),
                                              .amsgrad = cfg.value("amsgrad", false),
                                              .decoupled_weight_decay = kind == "adamw"});
}

// Runs one config in one dtype through tether; returns the largest relative error seen
// (parameters after each step and the final state).
double run_config(const parity::Reference& ref, const json& meta, const json& cfg, const std::string& dt) {
  const std::string cname = cfg["name"];
  CAPTURE(cname);
  CAPTURE(dt);
  std::vector<optim::ParamGroup> groups(2);
  groups[0].name = "inherited";
  groups[1].name = "head";
  for (size_t g = 0; g < 2; ++g) {
    groups[g].lr_mult = meta["lr_mults"][g];
    groups[g].weight_decay = cfg["wd"][g];
  }
  std::vector<std::pair<std::string, Tensor>> params;
  for (const json& p : meta["params"]) {
    const std::string name = p["name"];
    Tensor t = ref.at("init." + dt + "." + name).clone().set_requires_grad();
    const int g = p["group"];
    groups[g].names.push_back(name);
    groups[g].params.push_back(t);
    params.emplace_back(name, t);
  }
  const double scale = cfg["opt"] == "sgd" ? 1.0 : 0.1;
  const std::vector<double> base_lrs = meta["base_lrs"];
  auto opt = make(cfg, std::move(groups), base_lrs[0] * scale);

  double worst = 0;
  const int steps = meta["steps"];
  for (int s = 0; s < steps; ++s) {
    opt->set_lr(base_lrs[s] * scale);  // group lr = base * lr_mult, the same product as the script's
    for (auto& [name, p] : params) {
      const std::string key = "grad." + dt + "." + std::to_string(s) + "." + name;
      if (ref.has(key)) p.set_grad(ref.at(key).clone());
      else p.zero_grad();
    }
    opt->step();
    for (auto& [name, p] : params) {
      const double e = max_rel_err(p, ref.at(cname + "." + dt + "." + std::to_string(s) + "." + name));
      INFO("step " << s << " " << name << ": max relative error " << e);
      CHECK(e <= (dt == "f64" ? 1e-12 : 1e-6));
      worst = std::max(worst, e);
    }
  }

  // The final state: the same buffers by name, the same values.
  const std::string prefix = cname + "." + dt + ".state.";
  const std::map<std::string, Tensor> state = opt->state_tensors();
  std::set<std::string> want_keys;
  for (const std::string name : {"conv.weight", "fc.weight", "fc.bias"})
    for (const std::string buf : {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
      if (ref.has(prefix + name + "." + buf)) want_keys.insert(name + "." + buf);
  std::set<std::string> got_keys;
  for (const auto& [key, t] : state) got_keys.insert(key);
  CHECK(got_keys == want_keys);
  for (const std::string& key : want_keys) {
    if (!state.count(key)) continue;
    const double e = max_rel_err(state.at(key), ref.at(prefix + key));
    INFO("state " << key << ": max relative error " << e);
    CHECK(e <= (dt == "f64" ? 1e-12 : 1e-6));
    worst = std::max(worst, e);
  }
  // Per-parameter step counts: fc.bias missed a step; torch's Adam counts the same.
  const json param_steps = opt->state_json()["param_steps"];
  CHECK(param_steps == json({{"conv.weight", 6}, {"fc.weight", 6}, {"fc.bias", 5}}));
  if (meta["step_counts"].contains(cname)) CHECK(param_steps == meta["step_counts"][cname]);
  CHECK(opt->steps() == steps);
  return worst;
}

optim::ScheduleOptions schedule_options(const json& c) {
  optim::ScheduleOptions o;
  o.kind = c["kind"];
  o.base_lr = c["base_lr"];
  o.total_iters = c.value("total_iters", int64_t{0});
  o.milestones = c.value("milestones", std::vector<int64_t>{});
  o.gamma = c.value("gamma", 0.1);
  o.min_lr = c.value("min_lr", 0.0);
  o.warmup_iters = c.value("warmup_iters", int64_t{0});
  o.warmup_factor = c.value("warmup_factor", 0.1);
  return o;
}

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("SGD, Adam and AdamW match torch.optim step by step, f64 and f32") {
    auto ref = parity::reference("ref_optim.py");
    if (!ref) return;
    const json meta = json::parse(ref->metadata().at("optim"));
    for (const std::string dt : {"f64", "f32"}) {
      double worst_sgd = 0, worst_adam = 0;
      for (const json& cfg : meta["configs"]) {
        const double e = run_config(*ref, meta, cfg, dt);
        (cfg["opt"] == "sgd" ? worst_sgd : worst_adam) = std::max(cfg["opt"] == "sgd" ? worst_sgd : worst_adam, e);
      }
      MESSAGE(dt << ": max relative error vs torch.optim: SGD " << worst_sgd << ", Adam/AdamW " << worst_adam);
    }
  }

  TEST_CASE("lr schedules match torch.optim.lr_scheduler (SequentialLR warmup) for 30 iterations") {
    auto ref = parity::reference("ref_optim.py");
    if (!ref) return;
    const json schedules = json::parse(ref->metadata().at("schedules"));
    REQUIRE(schedules.size() >= 10);
    double worst = 0;
    for (const json& c : schedules) {
      const std::string name = c["name"];
      CAPTURE(name);
      const optim::Schedule schedule(schedule_options(c));
      const std::vector<double> want = ref->at("sched." + name).to_vector<double>();
      REQUIRE(want.size() == 30);
      for (int64_t it = 0; it < 30; ++it) {
        const double got = schedule.lr(it), e = std::abs(got - want[it]) / std::abs(want[it]);
        INFO("iteration " << it << ": tether " << got << ", torch " << want[it]);
        CHECK(e <= 1e-12);
        worst = std::max(worst, e);
      }
    }
    MESSAGE("max relative error vs torch schedules: " << worst);
  }
}
