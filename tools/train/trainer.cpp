// The training loop of SPEC 8. Read run_training from the top: setup, then one step is
//   forward → J → backward → + ∇Ω (closed form) → finite check → step pipeline (direction →
//   update → projection) → log / evaluate / checkpoint.
#include "tools/train/trainer.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "core/random.h"
#include "data/loader.h"
#include "models/registry.h"
#include "models/weights.h"
#include "optim/schedule.h"
#include "optim/step.h"
#include "autograd/engine.h"
#include "regularizers/diagnostics.h"
#include "regularizers/dtnh.h"
#include "regularizers/feature_penalty.h"
#include "regularizers/penalty.h"
#include "regularizers/projection.h"
#include "regularizers/ptr.h"
#include "tools/train/device.h"
#include "tools/train/progress.h"
#include "tools/train/run_files.h"

namespace tether::train {
namespace {

// ---- SIGINT: finish the current step, write a checkpoint, exit 130 ---------------------------
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

class SigintScope {
 public:
  SigintScope() { previous_ = std::signal(SIGINT, on_sigint); g_interrupted = 0; }
  ~SigintScope() { std::signal(SIGINT, previous_); }

 private:
  void (*previous_)(int);
};

// ---- setup helpers ---------------------------------------------------------------------------
// --bn (SPEC 8): train: batch statistics; eval: running statistics, affine trained; frozen:
// running statistics, affine frozen. Frozen modules always use running statistics.
void set_train_mode(models::Model& model, const std::string& bn) {
  model.train();
  if (bn == "train") return;
  for (const auto& [name, m] : model.named_modules())
    if (m->type_name() == "BatchNorm2d") m->train(false);
}

void freeze_batch_norm(models::Model& model) {
  for (const auto& [name, m] : model.named_modules())
    if (m->type_name() == "BatchNorm2d") m->freeze("");
}

std::vector<optim::ParamGroup> param_groups(const models::Model& model, const TrainOptions& o) {
  optim::ParamGroup inherited{"inherited", {}, {}, 1.0, o.weight_decay};
  optim::ParamGroup head{"head", {}, {}, o.head_lr_mult, o.weight_decay};
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    auto& g = reg::is_head_parameter(name, model.head_name()) ? head : inherited;
    g.names.push_back(name);
    g.params.push_back(p);
  }
  std::vector<optim::ParamGroup> groups;
  for (auto* g : {&inherited, &head})
    if (!g->params.empty()) groups.push_back(std::move(*g));
  TETHER_CHECK(!groups.empty(), "every parameter is frozen (--freeze): nothing to train");
  return groups;
}

std::unique_ptr<optim::Optimizer> make_optimizer(std::vector<optim::ParamGroup> groups, const TrainOptions& o) {
  if (o.optimizer == "sgd") return optim::make_sgd(std::move(groups), {o.lr, o.momentum, 0.0, o.nesterov});
  optim::AdamOptions a{o.lr, o.adam_beta1, o.adam_beta2, o.adam_eps, o.amsgrad, o.optimizer == "adamw"};
  return optim::make_adam(std::move(groups), a);
}

double grad_norm(const std::vector<optim::ParamGroup>& groups) {
  double total = 0;
  for (const auto& g : groups)
    for (const auto& p : g.params) {
      const Tensor grad = p.grad();
      if (grad.defined()) total += ops::dot(grad, grad);
    }
  return std::sqrt(total);
}

// SPEC 7: g_Ω apart from g_J, on the same batch — the autograd parts of Ω (feature penalties) by
// tether::grad on their graph, the weight-space penalty's closed form into the same buffers —
// then g_J into .grad by the training loss's backward, then .grad ← d (regularizers/dtnh.h).
// The penalty's part values go into `parts` and `loss`.
reg::DtnhStep dtnh_backward(const Tensor& objective, const Tensor& omega, const reg::Penalty* penalty, double scale,
                            const std::vector<optim::ParamGroup>& groups, reg::DtnhScope dtnh_scope,
                            nlohmann::json& parts, double& loss) {
  std::vector<std::string> names;
  std::vector<Tensor> params;
  for (const auto& g : groups) {
    names.insert(names.end(), g.names.begin(), g.names.end());
    params.insert(params.end(), g.params.begin(), g.params.end());
  }
  reg::GradTarget g_omega;
  if (omega.defined()) {
    const std::vector<Tensor> g = tether::grad({omega}, params, {}, /*retain_graph=*/true);
    for (size_t k = 0; k < g.size(); ++k)
      if (g[k].defined()) g_omega[names[k]] = ops::contiguous(g[k]);
  }
  if (penalty)
    for (const auto& [name, value] : penalty->add_gradient(scale, &g_omega)) parts[name] = value, loss += value;
  objective.backward();
  std::vector<Tensor> g_j, g_o;
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& p = params[k];
    if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    g_j.push_back(p.grad());
    auto it = g_omega.find(names[k]);
    g_o.push_back(it == g_omega.end() ? Tensor() : it->second);
  }
  return reg::dtnh_direction(g_j, g_o, dtnh_scope);
}

double distance_from_w0(const reg::ParamSets& sets) {
  double total = 0;
  for (const auto& [name, w] : sets.inherited) {
    const Tensor d = ops::binary(ops::Binary::sub, w.detach(), sets.w0.at(name));
    total += ops::dot(d, d);
  }
  return std::sqrt(total);
}

// The method's values for the progress line: each Ω part, PtR's w (or "off"), DTNH's first two
// angles and its correction rate.
std::string method_summary(const nlohmann::json& parts) {
  std::string out;
  char buf[96];
  for (const auto& [key, value] : parts.items())
    if (key.rfind("omega.", 0) == 0) {
      std::snprintf(buf, sizeof buf, "%s%s %.4g", out.empty() ? "" : "  ", key.c_str(), value.get<double>());
      out += buf;
    }
  if (parts.contains("ptr.active")) {
    if (parts.contains("ptr.w")) std::snprintf(buf, sizeof buf, "  ptr w %.3g", parts["ptr.w"].get<double>());
    else std::snprintf(buf, sizeof buf, "  ptr off");
    out += buf;
  }
  if (parts.contains("dtnh.angle1")) {
    std::snprintf(buf, sizeof buf, "  dtnh ∠(d,gJ) %.1f ∠(d,gΩ) %.1f corrected %.0f%%", parts["dtnh.angle1"].get<double>(),
                  parts["dtnh.angle2"].get<double>(), 100 * parts["dtnh.correction_rate"].get<double>());
    out += buf;
  }
  return out;
}

std::string csv_row(int64_t step, int64_t epoch, double train_loss, const EvalResult& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%lld", static_cast<long long>(step),
                static_cast<long long>(epoch), train_loss, r.top1, r.top5, r.mean_class_accuracy, r.loss,
                r.entropy_bits, static_cast<long long>(r.samples));
  return buf;
}
constexpr const char* kCsvHeader = "step,epoch,train_loss,top1,top5,mean_class_accuracy,loss,entropy_bits,samples";

}  // namespace

data::TransformOptions transform_options(const TrainOptions& o) {
  data::TransformOptions t;
  t.augment = o.augment;
  t.input_size = static_cast<int>(o.input_size);
  t.resize_size = static_cast<int>(o.resize_size);
  t.interpolation = data::parse_interpolation(o.interpolation);
  t.mean = {o.mean[0], o.mean[1], o.mean[2]};
  t.std = {o.std[0], o.std[1], o.std[2]};
  t.ten_crop = o.ten_crop;
  return t;
}

data::LoaderOptions loader_options(const TrainOptions& o, bool training) {
  data::LoaderOptions l;
  l.batch_size = training ? o.batch_size : (o.eval_batch_size > 0 ? o.eval_batch_size : o.batch_size);
  l.shuffle = training && o.shuffle == "epoch";
  l.drop_last = training;  // SPEC 9: the last partial training batch is dropped
  l.workers = static_cast<int>(o.workers);
  l.seed = o.seed;
  l.on_bad_image = data::parse_on_bad_image(o.on_bad_image);
  return l;
}

TrainData load_train_data(const TrainOptions& o) {
  TrainData d;
  if (o.data == "fashion-mnist") {
    d.train = data::fashion_mnist("train");
    d.val = data::fashion_mnist("test");
  } else if (!o.train_list.empty()) {
    d.train = data::list_file(o.train_list, o.data, o.num_classes);
    if (!o.val_list.empty()) d.val = data::list_file(o.val_list, o.data, d.train->num_classes());
  } else {
    d.train = data::image_folder_split(o.data, "train");
    if (o.val_split == 0 && o.test_per_class == 0) d.val = data::image_folder_split(o.data, "val");
  }
  if (!o.classes.empty()) {
    for (int64_t c : o.classes)
      TETHER_CHECK(c < d.train->num_classes(), "--classes: class ", c, " does not exist (the data has ",
                   d.train->num_classes(), " classes)");
    d.train = data::class_subset(d.train, o.classes);
    if (d.val) d.val = data::class_subset(d.val, o.classes);
  }
  if (o.val_split > 0) {
    auto [train_idx, val_idx] = data::validation_split(*d.train, o.val_split, o.seed);
    d.val = data::subset(d.train, val_idx);
    d.train = data::subset(d.train, train_idx);
  }
  if (o.test_per_class > 0) {  // the Caltech protocol: K per class for training, the next M for test
    auto [train_idx, test_idx] = data::train_test_per_class(*d.train, o.per_class, o.test_per_class, o.seed);
    d.val = data::subset(d.train, test_idx);
    d.train = data::subset(d.train, train_idx);
  } else if (o.per_class > 0) {
    d.train = data::subset(d.train, data::few_shot(*d.train, o.per_class, o.seed));
  }
  return d;
}

TrainSummary run_training(const TrainOptions& o) {
  validate(o);
  const Device device = setup_device(o.device, o.tf32);
  if (o.threads > 0) omp_set_num_threads(static_cast<int>(o.threads));
  const auto t_start = std::chrono::steady_clock::now();
  const bool resuming = !o.resume.empty();
  const std::string out = resuming ? o.resume : o.out;

  // ---- data ----
  const TrainData data = load_train_data(o);
  const int64_t num_classes = o.num_classes > 0 ? o.num_classes : data.train->num_classes();
  data::TransformOptions topts = transform_options(o);
  if (o.mean_subtract) {
    topts.mean_subtract = true;
    topts.train_mean = data::channel_mean(*data.train, 0, o.seed, static_cast<int>(o.workers));
  }
  data::Loader train_loader(data.train, data::make_train_pipeline(topts), pinned_for(loader_options(o, true), device));
  std::unique_ptr<data::Loader> val_loader;
  if (data.val)
    val_loader = std::make_unique<data::Loader>(data.val, data::make_eval_pipeline(topts),
                                                pinned_for(loader_options(o, false), device));
  const int64_t per_epoch = train_loader.batches_per_epoch();
  TETHER_CHECK(per_epoch > 0, "--batch-size ", o.batch_size, " is larger than the training set (",
               data.train->size(), " images): no full batch per epoch");
  const int64_t total_steps = o.iters > 0 ? o.iters : o.epochs * per_epoch;

  // ---- model, w0, parameter sets (SPEC 1) ----
  manual_seed(o.seed);  // the new head's init and dropout draw from the default generator
  models::ModelPtr model = models::create_model(o.model, {num_classes});
  if (!o.weights.empty()) models::load_weights(*model, o.weights);
  for (const auto& prefix : o.freeze) model->freeze(prefix);
  if (o.freeze_blocks > 0) models::freeze_blocks(*model, o.freeze_blocks);
  if (o.bn == "frozen") freeze_batch_norm(*model);
  model->to(device);  // before w0 is copied (the sets, the source network): everything lives on `device`
  const reg::ParamSets sets = reg::select_param_sets(*model, reg::parse_param_filter(o.reg_params));
  // fnp/kd/delta's feature part (SPEC 2, 5): taps on; kd/delta copy the model now, at w0, as the source network
  const auto features = reg::make_feature_penalty({o.reg, o.alpha, o.taps, o.attention}, *model);
  if (!o.init.empty()) models::load_weights(*model, o.init);
  reg::PenaltyOptions penalty_options{o.reg, o.alpha, o.beta};
  penalty_options.fisher = o.fisher;
  penalty_options.smooth_eps = o.smooth_eps;
  const auto penalty = reg::make_penalty(penalty_options, sets);

  // ---- optimisation ----
  auto optimizer = make_optimizer(param_groups(*model, o), o);
  const optim::Schedule schedule({o.schedule, o.lr, total_steps, o.milestones, o.lr_gamma, o.min_lr,
                                  o.warmup_iters, o.warmup_factor});
  optim::StepPipeline pipeline;  // the regularizer issues add direction and projection hooks
  const reg::ProjectionOptions projection{o.project, o.gamma, o.gamma_head};
  if (auto hook = reg::make_projection(projection, sets)) pipeline.projection.push_back(std::move(*hook));  // SPEC 3
  const reg::PtrOptions ptr_options{o.ptr_ratio, o.ptr_mean, o.ptr_loss, o.ptr_threshold};
  // PtR's rep (the head's input): the feature penalty's taps record it when there is one (a model
  // has one set of taps), else a store of our own.
  auto taps = std::make_shared<nn::TapStore>();
  if (o.ptr && !features) model->set_taps({}, taps, model->head_name());
  auto rep = [&] { return features ? features->rep() : taps->at("rep"); };
  const reg::DtnhScope dtnh_scope = reg::parse_dtnh_scope(o.dtnh_scope);

  // ---- run directory ----
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  double best_top1 = -1;
  double epoch_loss_sum = 0;  // the running epoch's mean training J (metrics.csv)
  int64_t epoch_loss_n = 0;
  reg::PtrSwitch ptr_switch(o.ptr_threshold);
  double dtnh_corrected_sum = 0;  // Σ over steps of the fraction corrected (the logged correction rate)
  TrainSummary summary;
  if (!out.empty()) std::filesystem::create_directories(out);
  if (resuming) {
    const nlohmann::json state = load_checkpoint(out, "last", *model, optimizer.get());
    step = state.at("step");
    epoch = state.at("epoch");
    batch_in_epoch = state.at("batch_in_epoch");
    best_top1 = state.value("best_top1", -1.0);
    epoch_loss_sum = state.at("epoch_loss_sum"), epoch_loss_n = state.at("epoch_loss_n");
    ptr_switch = reg::PtrSwitch(o.ptr_threshold, state.value("ptr_active", false));
    dtnh_corrected_sum = state.value("dtnh_corrected_sum", 0.0);
    default_generator().set_state(state.at("rng").at("seed"), state.at("rng").at("offset"));
  } else if (!out.empty()) {
    write_file_atomic(out + "/args.json", to_json(o).dump(1) + "\n");
  }
  LineLog log, metrics, diagnostics;
  if (!out.empty()) {
    log.open(out + "/log.jsonl", resuming, step, jsonl_step);
    metrics.open(out + "/metrics.csv", resuming, step, csv_step);
    if (metrics.empty()) metrics.write(kCsvHeader);
    diagnostics.open(out + "/diagnostics.csv", resuming, step, csv_step);
    if (diagnostics.empty()) diagnostics.write(reg::diagnostics_csv_header());
  }
  auto checkpoint = [&] {
    if (out.empty()) return;
    const Generator& g = default_generator();
    save_checkpoint(out, "last", *model, optimizer.get(),
                    {{"step", step}, {"epoch", epoch}, {"batch_in_epoch", batch_in_epoch}, {"best_top1", best_top1},
                     {"epoch_loss_sum", epoch_loss_sum}, {"epoch_loss_n", epoch_loss_n},
                     {"ptr_active", ptr_switch.active()}, {"dtnh_corrected_sum", dtnh_corrected_sum},
                     {"rng", {{"seed", g.seed()}, {"offset", g.offset()}}}});
  };

  Progress progress(o.progress, total_steps, o.log_interval);
  auto evaluate_now = [&] {
    if (!val_loader) return;
    summary.final_eval = evaluate(*model, *val_loader);
    summary.evaluated = true;
    set_train_mode(*model, o.bn);
    const double train_loss = epoch_loss_n ? epoch_loss_sum / epoch_loss_n : NAN;
    if (metrics.is_open()) metrics.write(csv_row(step, epoch, train_loss, summary.final_eval));
    progress.message("eval step " + std::to_string(step) + ": " + format_eval(summary.final_eval));
    if (summary.final_eval.top1 > best_top1) {
      best_top1 = summary.final_eval.top1;
      summary.best_eval = summary.final_eval;
      if (!out.empty()) save_weights(out + "/best.safetensors", *model, {{"step", std::to_string(step)}});
    }
  };

  auto diagnose = [&] {  // per-layer distances from w0 (regularizers/diagnostics.h)
    if (!diagnostics.is_open()) return;
    for (const reg::LayerDistance& d : reg::layer_distances(sets, projection))
      diagnostics.write(reg::diagnostics_csv_row(step, epoch, d));
  };

  auto finish_epoch = [&] {
    if (epoch_loss_n > 0) ptr_switch.end_epoch(epoch_loss_sum / static_cast<double>(epoch_loss_n));  // SPEC 6's switch
    ++epoch, batch_in_epoch = 0, epoch_loss_sum = 0, epoch_loss_n = 0;
  };

  // ---- the loop ----
  SigintScope sigint;
  set_train_mode(*model, o.bn);
  bool stop = step >= total_steps;
  while (!stop) {
    train_loader.start_epoch(epoch, batch_in_epoch);
    const double reg_scale = std::pow(o.reg_decay, static_cast<double>(epoch));  // SPEC 2 --reg-decay
    data::Batch batch;
    while (!stop && train_loader.next(batch)) {
      optimizer->set_lr(schedule.lr(step));
      optimizer->zero_grad();
      const DeviceBatch on_device = to_device(batch, device);
      const Tensor logits = (*model)(on_device.images);
      const Tensor J = cross_entropy(logits, on_device.labels, o.label_smoothing);  // SPEC 2: mean CE
      nlohmann::json parts = {{"J", J.item<double>()}};
      Tensor objective = J;  // the training loss: J, plus w·L_ptr while PtR is on (DTNH's g_J is its gradient)
      if (o.ptr) {
        parts["ptr.active"] = ptr_switch.active();
        if (ptr_switch.active()) {  // SPEC 6
          const reg::PtrStep p = reg::ptr_step(rep(), J, ptr_options, default_generator());
          objective = objective + p.term;
          parts["ptr.w"] = p.w, parts["ptr.g_ce"] = p.mean_g_ce, parts["ptr.g_ptr"] = p.mean_g_ptr;
          parts["ptr.loss"] = p.loss;
        }
      }
      double loss = objective.item<double>();
      Tensor omega;  // Ω's autograd parts (the feature penalties), summed
      if (features)  // "omega.features"; the source network runs on the same batch, its features freed here
        for (const auto& [name, term] : features->terms(on_device.images, reg_scale)) {
          omega = omega.defined() ? omega + term : term;
          parts[name] = term.item<double>();
          loss += parts[name].get<double>();
        }
      if (o.dtnh && penalty) {  // SPEC 7: g_Ω and g_J apart, then .grad ← d
        const reg::DtnhStep d = dtnh_backward(objective, omega, penalty.get(), reg_scale, optimizer->groups(),
                                              dtnh_scope, parts, loss);
        const double corrected = static_cast<double>(d.corrected) / static_cast<double>(d.groups);
        dtnh_corrected_sum += corrected;
        parts["dtnh.angle1"] = d.angle1, parts["dtnh.angle2"] = d.angle2;
        parts["dtnh.angle3"] = d.angle3, parts["dtnh.angle4"] = d.angle4;
        parts["dtnh.corrected"] = corrected;
        parts["dtnh.correction_rate"] = dtnh_corrected_sum / static_cast<double>(step + 1);
      } else {
        (omega.defined() ? objective + omega : objective).backward();
        if (penalty)  // Ω's closed-form gradient added into .grad in one pass (regularizers/sp_kernels.h)
          for (const auto& [name, value] : penalty->add_gradient(reg_scale)) parts[name] = value, loss += value;
      }
      if (!std::isfinite(loss))
        throw NonFiniteLoss(detail::make_message("non-finite loss at step ", step + 1, " (epoch ", epoch,
                                                 "): total ", loss, ", parts ", parts.dump(),
                                                 "; nothing was updated; the last checkpoint is intact"));
      const bool log_due = log.is_open() && ((step + 1) % o.log_interval == 0 || step + 1 == total_steps);
      const double gnorm = log_due ? grad_norm(optimizer->groups()) : 0.0;  // a pass over all gradients
      pipeline.step(*optimizer);
      ++step, ++batch_in_epoch;
      epoch_loss_sum += parts["J"].get<double>(), ++epoch_loss_n;
      progress.update(step, epoch, loss, optimizer->base_lr(), batch.size(), method_summary(parts));
      if (log_due) {
        nlohmann::json rec = {{"step", step}, {"epoch", epoch}, {"lr", optimizer->base_lr()}, {"total", loss},
                              {"grad_norm", gnorm}};
        rec.update(parts);
        if (o.project != "none") rec["constraint"] = reg::max_constraint_ratio(projection, sets);  // after the projection
        log.write(rec.dump());
      }
      const bool interrupted = g_interrupted || (o.stop_after > 0 && step >= o.stop_after);
      summary.interrupted = interrupted;
      stop = step >= total_steps || interrupted;
      const bool epoch_end = batch_in_epoch == per_epoch;
      const bool eval_due = o.eval_interval > 0 ? step % o.eval_interval == 0 : epoch_end;
      if (eval_due || step >= total_steps) evaluate_now();
      const bool diagnostics_due = o.diag_interval > 0 ? step % o.diag_interval == 0 : eval_due;
      if (diagnostics_due || step >= total_steps) diagnose();
      const bool checkpoint_due = o.checkpoint_interval > 0 ? step % o.checkpoint_interval == 0 : eval_due;
      if (epoch_end) finish_epoch();
      if (checkpoint_due || stop) checkpoint();
    }
    const auto& report = train_loader.epoch_report();
    if (report.skipped > 0)
      progress.message("skipped " + std::to_string(report.skipped) + " unreadable image(s) this epoch");
    if (!stop && batch_in_epoch != 0) finish_epoch();  // bad images shortened the epoch
  }
  progress.finish();
  summary.steps = step;
  if (!o.save_final.empty() && !summary.interrupted) save_weights(o.save_final, *model, {{"step", std::to_string(step)}});
  summary.distance_from_w0 = distance_from_w0(sets);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return summary;
}

}  // namespace tether::train
