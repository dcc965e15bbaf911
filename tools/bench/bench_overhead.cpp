// bench_overhead: what each regularizer costs per training step (issue 6's overhead targets:
// l2sp, l2sp-fisher <= 1.03x of --reg none; l1sp, glsp, mars-sp and each projection <= 1.05x).
// One full step per method, the trainer's path: forward, mean CE, backward, the penalty's
// closed-form gradient (Penalty::add_gradient), SGD momentum through optim::StepPipeline with
// the projection hook of reg::make_projection. Methods run round-robin (round i runs every
// method once), so drift of a shared machine hits them all alike. Per method: the median step
// time, its ratio to `none`, and the median of the penalty + projection part alone.
//   w0 = the model's init; the current weights are w0 + 1e-3·N(0,1) (Δ ≠ 0), and γ, γ_V are
//   the median constraint norm (per tensor for l2-pgm, per row for mars-pgm), so about half of
//   the constraints bind. α = β = 0.01.
// Usage: bench_overhead [--model resnet50] [--batch 16] [--size 224] [--iters 10] [--warmup 2]
//                       [--threads N] [--methods none,l2sp,...] [--penalty-only] [--autograd]
//   --penalty-only: time only the penalty + projection part (no forward/backward; .grad zeros)
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
#include "regularizers/penalty.h"
#include "regularizers/projection.h"

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
  std::vector<std::string> methods{"none", "l2", "l2sp", "l2sp-fisher", "l1sp", "glsp", "glsp-fisher", "mars-sp",
                                   "l2-pgm", "mars-pgm"};
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

struct Method {
  std::string name;
  std::unique_ptr<reg::Penalty> penalty;
  optim::StepPipeline pipeline;
  std::vector<double> step_s, part_s;
};

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  manual_seed(0);
  models::ModelPtr model = models::create_model(o.model, {});
  model->train();
  const reg::ParamSets sets = reg::select_param_sets(*model, reg::ParamFilter::weights);  // w0 = the init
  Generator gen(1);
  {
    NoGradGuard no_grad;  // Δ ≠ 0
    for (const auto* set : {&sets.inherited, &sets.head})
      for (const auto& [name, w] : *set) {
        Tensor noise = Tensor::empty(w.shape(), w.dtype());
        ops::normal_(noise, 0.0, 1e-3, gen);
        ops::axpy_(w, 1.0, noise);
      }
  }
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
    const bool projection = name == "l2-pgm" || name == "mars-pgm";
    reg::PenaltyOptions p{projection ? "none" : name, 0.01, 0.01};
    if (reg::needs_fisher(name)) p.fisher = fisher_path;
    m.penalty = reg::make_penalty(p, sets);
    if (projection) {
      const bool rows = name == "mars-pgm";
      const reg::ProjectionOptions po{name, median_norm(sets, false, rows), median_norm(sets, true, rows)};
      m.pipeline.projection.push_back(*reg::make_projection(po, sets));
    }
    methods.push_back(std::move(m));
  }
  std::remove(fisher_path.c_str());

  std::vector<optim::ParamGroup> groups{{"all", {}, {}, 1.0, 0.0}};
  for (const auto& [name, p] : model->named_parameters())
    if (p.requires_grad()) groups[0].names.push_back(name), groups[0].params.push_back(p);
  auto optimizer = optim::make_sgd(groups, {1e-4, 0.9});

  Tensor x = Tensor::empty({o.batch, 3, o.size, o.size});
  ops::normal_(x, 0.0, 1.0, gen);
  Tensor target = Tensor::empty({o.batch}, DType::i64);
  for (int64_t i = 0; i < o.batch; ++i) target.data<int64_t>()[i] = static_cast<int64_t>(gen.next_below(1000));
  if (o.penalty_only)
    for (const Tensor& p : groups[0].params) p.set_grad(Tensor::zeros(p.shape(), p.dtype()));

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
      optimizer->zero_grad();
      cross_entropy((*model)(x), target).backward();
      const double p0 = now_s();
      penalty_gradient(m);
      part = now_s() - p0;
      // The trainer's pipeline (direction hooks, update, projection hooks), the projection timed inside.
      optim::StepPipeline timed;
      for (const auto& hook : m.pipeline.projection)
        timed.projection.push_back({hook.name, [&part, run = hook.run] {
                                      const double q0 = now_s();
                                      run();
                                      part += now_s() - q0;
                                    }});
      timed.step(*optimizer);
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
