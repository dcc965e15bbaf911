// bench_overhead: what each regularizer costs per training step (issue 6's overhead targets:
// l2sp, l2sp-fisher <= 1.03x of --reg none; l1sp, glsp, mars-sp and each projection <= 1.05x;
// issue 7's: kd, delta <= 1.45x; dtnh-l2sp, ptr <= 1.10x).
// One full step per method, the trainer's path: forward, mean CE, backward, the penalty's
// closed-form gradient (Penalty::add_gradient), SGD momentum through optim::StepPipeline with
// the projection hook of reg::make_projection. Methods run round-robin (round i runs every
// method once), so drift of a shared machine hits them all alike. Per method: the median step
// time, its ratio to `none`, and the median of the penalty + projection part alone.
//   w0 = the model's init; the current weights are w0 + 1e-3·N(0,1) (Δ ≠ 0), and γ, γ_V are
//   the median constraint norm (per tensor for l2-pgm, per row for mars-pgm), so about half of
//   the constraints bind. α = β = 0.01.
// Issue 7's methods follow the trainer's step too: kd, delta and fnp add their feature part
// (FeaturePenalty::terms: the source network's forward on the same batch, the fused distance)
// to J before the backward; delta's attention is random (the time does not depend on it);
// dtnh-l2sp takes g_Ω into its own buffers, J's backward, then reg::dtnh_direction; ptr adds
// w·L_ptr (reg::ptr_step: ∂J/∂rep on J's graph). Each of these runs on its own copy of the model
// (a model has one set of taps; the source network is built once).
// Usage: bench_overhead [--model resnet50] [--batch 16] [--size 224] [--iters 10] [--warmup 2]
//                       [--threads N] [--methods none,l2sp,...] [--penalty-only] [--autograd]
//   --penalty-only: time only the penalty + projection part (no forward/backward; .grad zeros;
//                   the weight-space methods: the others need the forward)
//   --autograd:     the penalty through terms() + backward instead (the path before the closed form)
// Output: one "OVERHEAD method step_ms ratio penalty_ms" line per method (for
// tools/bench/run_overhead_bench.sh), after a header line starting with "#".
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "optim/step.h"
#include "autograd/engine.h"
#include "regularizers/attention.h"
#include "regularizers/dtnh.h"
#include "regularizers/feature_penalty.h"
#include "regularizers/penalty.h"
#include "regularizers/projection.h"
#include "regularizers/ptr.h"

using namespace tether;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

struct Options {
  std::string model = "resnet50";
  int64_t batch = 16, size = 224;
  int iters = 10, warmup = 2, threads = 0;
  std::vector<std::string> methods{"none",   "l2",       "l2sp", "l2sp-fisher", "l1sp", "glsp", "glsp-fisher",
                                   "mars-sp", "l2-pgm", "mars-pgm", "kd", "delta", "fnp", "dtnh-l2sp", "ptr"};
  bool penalty_only = false, autograd = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      TETHER_CHECK(i + 1 < argc, a, " needs a value");
      return argv[++i];
    };
    if (a == "--model") o.model = value();
    else if (a == "--batch") o.batch = std::stoll(value());
    else if (a == "--size") o.size = std::stoll(value());
    else if (a == "--iters") o.iters = std::stoi(value());
    else if (a == "--warmup") o.warmup = std::stoi(value());
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--penalty-only") o.penalty_only = true;
    else if (a == "--autograd") o.autograd = true;
    else if (a == "--methods") {
      o.methods.clear();
      std::stringstream ss(value());
      for (std::string m; std::getline(ss, m, ',');) o.methods.push_back(m);
    } else TETHER_FAIL("unknown option ", a, " (see the comment at the top of tools/bench/bench_overhead.cpp)");
  }
  return o;
}

// The median of ‖Δ‖_F over tensors (l2) or of ‖Δ_r‖₁ over rows (mars), at radius 1.
double median_norm(const reg::ParamSets& sets, bool head, bool rows) {
  std::vector<double> norms;
  for (const auto& [name, w] : head ? sets.head : sets.inherited) {
    const Tensor c = head ? Tensor() : sets.w0.at(name);
    if (!rows) {
      norms.push_back(reg::l2_ratio(w.detach(), c, 1.0));
      continue;
    }
    const int64_t r = w.shape()[0], len = w.numel() / r;
    const Tensor d = ops::reshape(c.defined() ? ops::binary(ops::Binary::sub, w.detach(), c) : w.detach().clone(), {r, len});
    for (double v : ops::sum(ops::unary(ops::Unary::abs, d), {1}).to_vector<double>()) norms.push_back(v);
  }
  return median(norms);
}

// A model with its parameter sets and optimizer: one shared by the weight-space methods, one of
// its own for each method that sets taps on its model.
struct Rig {
  models::ModelPtr model;
  std::unique_ptr<reg::ParamSets> sets;
  std::vector<optim::ParamGroup> groups;
  std::unique_ptr<optim::Optimizer> optimizer;
};

struct Method {
  std::string name;
  Rig* rig = nullptr;
  std::unique_ptr<reg::Penalty> penalty;
  std::unique_ptr<reg::FeaturePenalty> features;
  bool dtnh = false, ptr = false;
  std::shared_ptr<nn::TapStore> taps;  // ptr: the head's input
  optim::StepPipeline pipeline;
  std::vector<double> step_s, part_s;
};

bool has_own_model(const std::string& name) { return reg::is_feature_penalty(name) || name == "ptr"; }

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  // Every rig starts from the same init (w0) and the same perturbation (Δ ≠ 0).
  auto make_rig = [&] {
    auto rig = std::make_unique<Rig>();
    manual_seed(0);
    rig->model = models::create_model(o.model, {});
    rig->model->train();
    rig->sets = std::make_unique<reg::ParamSets>(reg::select_param_sets(*rig->model, reg::ParamFilter::weights));
    Generator noise_gen(1);
    NoGradGuard no_grad;
    for (const auto* set : {&rig->sets->inherited, &rig->sets->head})
      for (const auto& [name, w] : *set) {
        Tensor noise = Tensor::empty(w.shape(), w.dtype());
        ops::normal_(noise, 0.0, 1e-3, noise_gen);
        ops::axpy_(w, 1.0, noise);
      }
    rig->groups = {{"all", {}, {}, 1.0, 0.0}};
    for (const auto& [name, p] : rig->model->named_parameters())
      if (p.requires_grad()) rig->groups[0].names.push_back(name), rig->groups[0].params.push_back(p);
    rig->optimizer = optim::make_sgd(rig->groups, {1e-4, 0.9});
    if (o.penalty_only)
      for (const Tensor& p : rig->groups[0].params) p.set_grad(Tensor::zeros(p.shape(), p.dtype()));
    return rig;
  };
  std::vector<std::unique_ptr<Rig>> rigs;
  rigs.push_back(make_rig());
  const reg::ParamSets& sets = *rigs[0]->sets;
  Generator gen(2);
  // The Fisher's values do not change the time (the same loads and flops for any F > 0).
  std::map<std::string, Tensor> fisher;
  for (const auto& [name, w] : sets.inherited) {
    Tensor f = Tensor::empty(w.shape(), w.dtype());
    ops::uniform_(f, 0.1, 1.0, gen);
    fisher.emplace(name, f);
  }
  const std::string fisher_path = "/tmp/bench_overhead_fisher_" + std::to_string(getpid()) + ".safetensors";
  safetensors::save(fisher_path, fisher);

  std::vector<Method> methods;
  for (const auto& name : o.methods) {
    Method m;
    m.name = name;
    m.rig = rigs[0].get();
    if (has_own_model(name)) {
      rigs.push_back(make_rig());
      m.rig = rigs.back().get();
    }
    const bool projection = name == "l2-pgm" || name == "mars-pgm";
    m.dtnh = name == "dtnh-l2sp";
    m.ptr = name == "ptr";
    const std::string reg = projection || m.ptr ? "none" : m.dtnh ? "l2sp" : name;
    reg::PenaltyOptions p{reg, 0.01, 0.01};
    if (reg::needs_fisher(name)) p.fisher = fisher_path;
    m.penalty = reg::make_penalty(p, *m.rig->sets);
    if (reg::is_feature_penalty(name)) {
      reg::FeatureOptions f{name, 0.01, {}, ""};
      if (name == "delta") {  // random attention, one [C] tensor per default tap
        reg::SourceNetwork probe(*m.rig->model, m.rig->model->default_taps());
        std::map<std::string, std::vector<double>> attention;
        for (const auto& [tap, channels] : probe.channel_counts())
          for (int64_t c = 0; c < channels; ++c) attention[tap].push_back(0.5 + gen.next_uniform());
        f.attention = "/tmp/bench_overhead_attention_" + std::to_string(getpid()) + ".safetensors";
        reg::save_attention(f.attention, attention, {});
      }
      m.features = reg::make_feature_penalty(f, *m.rig->model);
      if (!f.attention.empty()) std::remove(f.attention.c_str());
    }
    if (m.ptr) {
      m.taps = std::make_shared<nn::TapStore>();
      m.rig->model->set_taps({}, m.taps, m.rig->model->head_name());
    }
    if (projection) {
      const bool rows = name == "mars-pgm";
      const reg::ProjectionOptions po{name, median_norm(sets, false, rows), median_norm(sets, true, rows)};
      m.pipeline.projection.push_back(*reg::make_projection(po, sets));
    }
    methods.push_back(std::move(m));
  }
  std::remove(fisher_path.c_str());

  Tensor x = Tensor::empty({o.batch, 3, o.size, o.size});
  ops::normal_(x, 0.0, 1.0, gen);
  Tensor target = Tensor::empty({o.batch}, DType::i64);
  for (int64_t i = 0; i < o.batch; ++i) target.data<int64_t>()[i] = static_cast<int64_t>(gen.next_below(1000));
  // The penalty's gradient, as the trainer adds it (or, with --autograd, as it did before).
  auto penalty_gradient = [&](const Method& m) {
    if (!m.penalty) return;
    if (!o.autograd) {
      m.penalty->add_gradient(1.0);
      return;
    }
    Tensor total;
    for (const auto& [part, t] : m.penalty->terms(1.0)) total = total.defined() ? total + t : t;
    if (total.defined()) total.backward();
  };
  auto step = [&](Method& m, bool record) {
    const double t0 = now_s();
    double part = 0;
    if (o.penalty_only) {
      penalty_gradient(m);
      NoGradGuard no_grad;
      for (const auto& hook : m.pipeline.projection) hook.run();
      part = now_s() - t0;
    } else {
      Rig& rig = *m.rig;
      rig.optimizer->zero_grad();
      Tensor J = cross_entropy((*rig.model)(x), target);
      // The part timed alone: the method's own forward work (PtR's term, the source network and
      // the feature distance), its penalty gradient and its projection; the extra backward through
      // the feature part shows in the step time only.
      const double f0 = now_s();
      Tensor objective = J;
      if (m.ptr) objective = objective + reg::ptr_step(m.taps->at("rep"), J, {}, gen).term;
      if (m.features) objective = objective + m.features->terms(x, 1.0).at(0).second;
      part = now_s() - f0;
      if (m.dtnh) {  // the trainer's dtnh_backward for a weight-space penalty
        const double p0 = now_s();
        reg::GradTarget g_omega;
        m.penalty->add_gradient(1.0, &g_omega);
        const double p1 = now_s();
        objective.backward();
        const double p2 = now_s();
        std::vector<Tensor> g_j, g_o;
        for (size_t k = 0; k < rig.groups[0].params.size(); ++k) {
          g_j.push_back(rig.groups[0].params[k].grad());
          auto it = g_omega.find(rig.groups[0].names[k]);
          g_o.push_back(it == g_omega.end() ? Tensor() : it->second);
        }
        reg::dtnh_direction(g_j, g_o, reg::DtnhScope::global);
        part += (p1 - p0) + (now_s() - p2);
      } else {
        objective.backward();
        const double p0 = now_s();
        penalty_gradient(m);
        part += now_s() - p0;
      }
      // The trainer's pipeline (direction hooks, update, projection hooks), the projection timed inside.
      optim::StepPipeline timed;
      for (const auto& hook : m.pipeline.projection)
        timed.projection.push_back({hook.name, [&part, run = hook.run] {
                                      const double q0 = now_s();
                                      run();
                                      part += now_s() - q0;
                                    }});
      timed.step(*rig.optimizer);
    }
    if (record) m.step_s.push_back(now_s() - t0), m.part_s.push_back(part);
  };
  for (int i = 0; i < o.warmup; ++i)
    for (auto& m : methods) step(m, false);
  for (int i = 0; i < o.iters; ++i)
    for (auto& m : methods) step(m, true);

  std::printf("# %s batch %lld %lldx%lld, %d threads, %d round-robin rounds after %d warm-up, %s%s\n", o.model.c_str(),
              static_cast<long long>(o.batch), static_cast<long long>(o.size), static_cast<long long>(o.size),
              omp_get_max_threads(), o.iters, o.warmup, o.autograd ? "autograd penalties" : "closed-form penalties",
              o.penalty_only ? ", penalty + projection only" : "");
  double base = NAN;
  for (const auto& m : methods)
    if (m.name == "none") base = median(m.step_s);
  for (const auto& m : methods)
    std::printf("OVERHEAD %s %.3f %.4f %.3f\n", m.name.c_str(), 1e3 * median(m.step_s), median(m.step_s) / base,
                1e3 * median(m.part_s));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_overhead: %s\n", e.what());
  return 1;
}
