#include "tools/train/options.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "models/registry.h"
#include "regularizers/penalty.h"
#include "regularizers/projection.h"
#include "regularizers/ptr.h"

namespace tether::train {
namespace {

// A choice validator whose message names the valid values.
CLI::IsMember choice(std::vector<std::string> values) { return CLI::IsMember(std::move(values)); }

std::string join_value(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : ",") + join_value(item);
    return out;
  }
  return v.dump();  // numbers and booleans print as the flag expects
}

// JSON has no infinity (nlohmann writes null): an infinite radius is written as "inf", which the
// flag parses back (--config / --resume).
nlohmann::json finite_or_inf(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json("inf"); }

}  // namespace

void add_train_flags(CLI::App& cmd, TrainOptions& o) {
  const auto pos = CLI::PositiveNumber, nonneg = CLI::NonNegativeNumber;
  // A flag given twice: the last one wins (as argparse), so a command can be extended by
  // appending flags. List flags below collect all their values instead.
  cmd.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->always_capture_default();
  const auto all = CLI::MultiOptionPolicy::TakeAll;
  // model and weights
  cmd.add_option("--model", o.model, "Architecture (see `tether models`)")
      ->required()
      ->check(CLI::IsMember(models::model_names()));
  cmd.add_option("--weights", o.weights, "Pretrained weights w0 (safetensors); omitted: train from init")
      ->check(CLI::ExistingFile);
  cmd.add_option("--init", o.init, "Other starting weights (penalties still refer to --weights)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--num-classes", o.num_classes, "Classes of the new head (0: from the data)")->check(nonneg);
  cmd.add_option("--freeze", o.freeze, "Modules to freeze, by name or dotted prefix (e.g. conv1,bn1,layer1,layer2.0)")
      ->delimiter(',')->multi_option_policy(all);
  cmd.add_option("--freeze-blocks", o.freeze_blocks,
                 "Freeze the first N blocks of the architecture (`tether models --blocks M` lists them)")->check(nonneg);
  cmd.add_option("--bn", o.bn, "BatchNorm: train (batch stats), eval (running stats), frozen")
      ->check(choice({"train", "eval", "frozen"}));
  // data
  cmd.add_option("--data", o.data, "ImageFolder root (train/ and val/ or test/), or 'fashion-mnist'")->required();
  cmd.add_option("--train-list", o.train_list, "List file of 'relative/path label' lines (paths relative to --data)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--val-list", o.val_list, "List file of the evaluation set (paths relative to --data)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--classes", o.classes, "Keep only these class indices, relabelled in this order")->delimiter(',')->multi_option_policy(all);
  cmd.add_option("--per-class", o.per_class, "Few-shot: K seeded training images per class (0: all)")->check(nonneg);
  cmd.add_option("--test-per-class", o.test_per_class,
                 "Caltech protocol: with --per-class K, the next M images per class are the evaluation set")
      ->check(nonneg);
  cmd.add_option("--val-split", o.val_split, "Validate on this seeded fraction of the training set")
      ->check(CLI::Range(0.0, 0.9));
  cmd.add_option("--input-size", o.input_size, "Network input size (pixels)")->check(pos);
  cmd.add_option("--resize-size", o.resize_size, "Resize before cropping (0: input-size / 0.875)")->check(nonneg);
  cmd.add_option("--augment", o.augment, "Training augmentation: none, flip, crop-flip, rrc, l2sp, ptr")
      ->check(choice({"none", "flip", "crop-flip", "rrc", "l2sp", "ptr"}));
  cmd.add_option("--interpolation", o.interpolation, "Resize filter")->check(choice({"bilinear", "bicubic"}));
  cmd.add_option("--mean", o.mean, "Normalisation mean, 3 values")->delimiter(',')->multi_option_policy(all);
  cmd.add_option("--std", o.std, "Normalisation std, 3 values")->delimiter(',')->multi_option_policy(all);
  cmd.add_flag("--mean-subtract", o.mean_subtract, "Subtract the training set's per-channel mean (L2-SP)");
  cmd.add_option("--shuffle", o.shuffle, "epoch (a new seeded order each epoch) or none")
      ->check(choice({"epoch", "none"}));
  cmd.add_option("--workers", o.workers, "Data loading threads")->check(nonneg);
  cmd.add_option("--on-bad-image", o.on_bad_image, "skip (warn and count) or error")
      ->check(choice({"skip", "error"}));
  cmd.add_flag("--ten-crop", o.ten_crop, "Evaluate on ten crops, softmax averaged");
  // optimisation
  cmd.add_option("--batch-size", o.batch_size, "Training batch size")->check(pos);
  cmd.add_option("--eval-batch-size", o.eval_batch_size, "Evaluation batch size (0: batch size)")->check(nonneg);
  cmd.add_option("--epochs", o.epochs, "Training epochs")->check(nonneg);
  cmd.add_option("--iters", o.iters, "Training iterations (overrides --epochs)")->check(nonneg);
  cmd.add_option("--optimizer", o.optimizer, "sgd, adam or adamw")->check(choice({"sgd", "adam", "adamw"}));
  cmd.add_option("--lr", o.lr, "Base learning rate")->check(nonneg);
  cmd.add_option("--momentum", o.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
  cmd.add_flag("--nesterov", o.nesterov, "Nesterov momentum");
  cmd.add_option("--weight-decay", o.weight_decay, "Optimizer weight decay (coupled; decoupled for adamw)")
      ->check(nonneg);
  cmd.add_option("--adam-beta1", o.adam_beta1, "Adam beta1")->check(CLI::Range(0.0, 0.999999));
  cmd.add_option("--adam-beta2", o.adam_beta2, "Adam beta2")->check(CLI::Range(0.0, 0.999999));
  cmd.add_option("--adam-eps", o.adam_eps, "Adam epsilon")->check(pos);
  cmd.add_flag("--amsgrad", o.amsgrad, "AMSGrad variant of Adam/AdamW");
  cmd.add_option("--schedule", o.schedule, "const, step, exp or cosine")
      ->check(choice({"const", "step", "exp", "cosine"}));
  cmd.add_option("--milestones", o.milestones, "step schedule: iterations where lr *= lr-gamma")->delimiter(',')->multi_option_policy(all);
  cmd.add_option("--lr-gamma", o.lr_gamma, "step/exp schedule factor")->check(pos);
  cmd.add_option("--min-lr", o.min_lr, "cosine schedule floor")->check(nonneg);
  cmd.add_option("--warmup-iters", o.warmup_iters, "Linear warmup iterations")->check(nonneg);
  cmd.add_option("--warmup-factor", o.warmup_factor, "Warmup starts at lr * this")->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--head-lr-mult", o.head_lr_mult, "Learning-rate multiplier of the head (S̄)")->check(nonneg);
  cmd.add_option("--label-smoothing", o.label_smoothing, "Cross-entropy label smoothing")
      ->check(CLI::Range(0.0, 0.999));
  // method
  std::string reg_list;
  for (const auto& r : reg::penalty_names()) reg_list += (reg_list.empty() ? "" : ", ") + r;
  cmd.add_option("--reg", o.reg, "Penalty (SPEC 2): " + reg_list);
  cmd.add_option("--alpha", o.alpha, "Penalty coefficient on S (inherited)")->check(nonneg);
  cmd.add_option("--beta", o.beta, "Penalty coefficient on S̄ (head)")->check(nonneg);
  cmd.add_option("--fisher", o.fisher, "Diagonal Fisher safetensors file (tether fisher), for --reg *-fisher");
  cmd.add_option("--smooth-eps", o.smooth_eps, "Smoothing epsilon of l1sp, glsp, glsp-fisher");
  cmd.add_option("--taps", o.taps, "kd, delta: modules whose outputs are compared (default: the model's, SPEC 5)")
      ->delimiter(',');
  cmd.add_option("--attention", o.attention, "delta: channel attention file (tether attention)");
  cmd.add_option("--reg-params", o.reg_params, "Penalised tensors: weights (ndim >= 2) or all")
      ->check(choice({"weights", "all"}));
  cmd.add_option("--reg-decay", o.reg_decay, "Penalty coefficients times this^epoch")->check(nonneg);
  cmd.add_option("--project", o.project, "Projection after every step (SPEC 3): none, l2-pgm, mars-pgm");
  cmd.add_option("--gamma", o.gamma, "Projection radius for S (around w0); inf: off");
  cmd.add_option("--gamma-head", o.gamma_head, "Projection radius for the head S̄ (around 0); inf: off");
  cmd.add_flag("--ptr", o.ptr, "PtR (SPEC 6): add the pseudo regression task on the head's input");
  cmd.add_option("--ptr-ratio", o.ptr_ratio, "PtR: R in w = mean G_ce / (mean G_ptr R)");
  cmd.add_option("--ptr-mean", o.ptr_mean, "PtR: targets U[0, 2m) (0: zero targets)");
  cmd.add_option("--ptr-loss", o.ptr_loss, "PtR: sml1 (smooth L1) or l2 (x²/2)")->check(choice({"sml1", "l2"}));
  cmd.add_option("--ptr-threshold", o.ptr_threshold,
                 "PtR: switch on after an epoch whose mean training CE fell below this (inf: from the first step)");
  cmd.add_flag("--dtnh", o.dtnh, "DTNH (SPEC 7): remove the penalty gradient's component against the loss gradient");
  cmd.add_option("--dtnh-scope", o.dtnh_scope, "DTNH over all parameters at once (global) or per tensor")
      ->check(choice({"global", "tensor"}));
  // run
  cmd.add_option("--seed", o.seed, "Seeds init of the new head, shuffling, augmentation, dropout");
  cmd.add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(nonneg);
  cmd.add_option("--device", o.device, "cpu or cuda[:N]");
  cmd.add_option("--tf32", o.tf32, "CUDA float32 math: conv (TF32 convolutions, PyTorch's default), all (and GEMM), "
                                   "none (strict float32)")
      ->check(choice({"conv", "all", "none"}));
  cmd.add_option("--out", o.out, "Run directory (args.json, metrics.csv, log.jsonl, checkpoints)");
  cmd.add_option("--log-interval", o.log_interval, "Iterations between log lines")->check(pos);
  cmd.add_option("--eval-interval", o.eval_interval, "Iterations between evaluations (0: every epoch)")
      ->check(nonneg);
  cmd.add_option("--checkpoint-interval", o.checkpoint_interval,
                 "Iterations between checkpoints (0: at every evaluation)")->check(nonneg);
  cmd.add_option("--diag-interval", o.diag_interval,
                 "Iterations between per-layer distance rows in diagnostics.csv (0: at every evaluation)")
      ->check(nonneg);
  cmd.add_option("--stop-after", o.stop_after,
                 "Stop after this many steps as if interrupted: checkpoint, exit 130 (time-boxed jobs)")
      ->check(nonneg);
  cmd.add_option("--save-final", o.save_final, "Write the final weights to this safetensors file");
  cmd.add_option("--progress", o.progress, "auto (bar on a terminal), bar, plain or none")
      ->check(choice({"auto", "bar", "plain", "none"}));
}

void add_eval_pipeline_flags(CLI::App& cmd, TrainOptions& o) {
  cmd.add_option("--input-size", o.input_size, "Input size")->check(CLI::PositiveNumber);
  cmd.add_option("--resize-size", o.resize_size, "Resize before the centre crop (0: input-size / 0.875)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--interpolation", o.interpolation, "bilinear or bicubic")->check(choice({"bilinear", "bicubic"}));
  cmd.add_option("--mean", o.mean, "Normalisation mean")->delimiter(',')->expected(3);
  cmd.add_option("--std", o.std, "Normalisation std")->delimiter(',')->expected(3);
  cmd.add_option("--augment", o.augment, "The training run's --augment (none, flip: resize to input size; "
                                         "others: resize shorter side, centre crop)")
      ->check(choice({"none", "flip", "crop-flip", "rrc", "l2sp", "ptr"}));
  cmd.add_option("--workers", o.workers, "Data loading threads")->check(CLI::NonNegativeNumber);
  cmd.add_option("--threads", o.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--device", o.device, "cpu or cuda[:N]");
  cmd.add_option("--tf32", o.tf32, "CUDA float32 math: conv (PyTorch's default), all, none (strict float32)")
      ->check(choice({"conv", "all", "none"}));
}

void validate(const TrainOptions& o) {
  const auto& regs = reg::penalty_names();
  if (std::find(regs.begin(), regs.end(), o.reg) == regs.end()) {
    std::string known;
    for (const auto& r : regs) known += (known.empty() ? "" : ", ") + r;
    TETHER_FAIL("--reg: unknown penalty '", o.reg, "' (known: ", known, ")");
  }
  const auto& projections = reg::projection_names();
  if (std::find(projections.begin(), projections.end(), o.project) == projections.end()) {
    std::string known;
    for (const auto& p : projections) known += (known.empty() ? "" : ", ") + p;
    TETHER_FAIL("--project: unknown projection '", o.project, "' (known: ", known, ")");
  }
  TETHER_CHECK(o.gamma > 0, "--gamma must be > 0 (inf: no constraint on S), got ", o.gamma);  // NaN fails too
  TETHER_CHECK(o.gamma_head > 0, "--gamma-head must be > 0 (inf: no constraint on the head), got ", o.gamma_head);
  TETHER_CHECK(!reg::needs_fisher(o.reg) || !o.fisher.empty(), "--reg ", o.reg, " needs --fisher FILE");
  TETHER_CHECK(o.fisher.empty() || reg::needs_fisher(o.reg), "--fisher is only read by --reg l2sp-fisher or glsp-fisher, not '",
               o.reg, "'");
  reg::validate(reg::PtrOptions{o.ptr_ratio, o.ptr_mean, o.ptr_loss, o.ptr_threshold});
  TETHER_CHECK(!o.dtnh || o.reg != "none", "--dtnh corrects a penalty's gradient: give --reg (a projection alone has none)");
  TETHER_CHECK(std::isfinite(o.smooth_eps) && o.smooth_eps > 0, "--smooth-eps must be > 0 and finite, got ", o.smooth_eps);
  TETHER_CHECK(o.reg != "delta" || !o.attention.empty(), "--reg delta needs --attention FILE (tether attention)");
  TETHER_CHECK(o.attention.empty() || o.reg == "delta", "--attention is only read by --reg delta, not '", o.reg, "'");
  TETHER_CHECK(o.attention.empty() || std::filesystem::is_regular_file(o.attention), "--attention: no such file '",
               o.attention, "'");
  TETHER_CHECK(o.taps.empty() || o.reg == "kd" || o.reg == "delta", "--taps is only read by --reg kd or delta, not '",
               o.reg, "'");
  TETHER_CHECK(o.epochs > 0 || o.iters > 0, "give --epochs or --iters (the training length)");
  TETHER_CHECK(o.mean.size() == 3 && o.std.size() == 3, "--mean and --std take 3 comma-separated values (once), got ",
               o.mean.size(), " and ", o.std.size());
  for (float s : o.std) TETHER_CHECK(s > 0, "--std values must be > 0, got ", s);
  if (o.data != "fashion-mnist")
    TETHER_CHECK(std::filesystem::is_directory(o.data), "--data: no such folder '", o.data, "'");
  TETHER_CHECK(o.test_per_class == 0 || o.per_class > 0, "--test-per-class needs --per-class (K train, then M test per class)");
  TETHER_CHECK(o.test_per_class == 0 || o.val_split == 0, "--test-per-class and --val-split both choose the evaluation set: give one");
  TETHER_CHECK(o.val_list.empty() || !o.train_list.empty(), "--val-list needs --train-list");
  TETHER_CHECK(o.train_list.empty() || o.data != "fashion-mnist", "--train-list: --data must be the image folder its paths are relative to");
  for (int64_t c : o.classes) TETHER_CHECK(c >= 0, "--classes: negative class index ", c);
  for (size_t i = 1; i < o.milestones.size(); ++i)
    TETHER_CHECK(o.milestones[i] > o.milestones[i - 1], "--milestones must increase, got ", o.milestones[i - 1],
                 " then ", o.milestones[i]);
  TETHER_CHECK(o.schedule != "step" || !o.milestones.empty(), "--schedule step needs --milestones");
  TETHER_CHECK(!o.nesterov || (o.optimizer == "sgd" && o.momentum > 0), "--nesterov needs --optimizer sgd and --momentum > 0");
  TETHER_CHECK(!o.amsgrad || o.optimizer != "sgd", "--amsgrad needs --optimizer adam or adamw");
  TETHER_CHECK(o.device == "cpu" || o.device.rfind("cuda", 0) == 0, "--device must be cpu or cuda[:N], got '",
               o.device, "'");
  TETHER_CHECK(std::isfinite(o.lr) && std::isfinite(o.alpha) && std::isfinite(o.beta),
               "--lr, --alpha and --beta must be finite");
}

nlohmann::json to_json(const TrainOptions& o) {
  return {{"model", o.model}, {"weights", o.weights}, {"init", o.init}, {"num-classes", o.num_classes},
          {"freeze", o.freeze}, {"freeze-blocks", o.freeze_blocks}, {"bn", o.bn}, {"data", o.data}, {"train-list", o.train_list}, {"val-list", o.val_list}, {"classes", o.classes},
          {"per-class", o.per_class}, {"test-per-class", o.test_per_class}, {"val-split", o.val_split}, {"input-size", o.input_size},
          {"resize-size", o.resize_size}, {"augment", o.augment}, {"interpolation", o.interpolation},
          {"mean", o.mean}, {"std", o.std}, {"mean-subtract", o.mean_subtract}, {"shuffle", o.shuffle},
          {"workers", o.workers}, {"on-bad-image", o.on_bad_image}, {"ten-crop", o.ten_crop},
          {"batch-size", o.batch_size}, {"eval-batch-size", o.eval_batch_size}, {"epochs", o.epochs},
          {"iters", o.iters}, {"optimizer", o.optimizer}, {"lr", o.lr}, {"momentum", o.momentum},
          {"nesterov", o.nesterov}, {"weight-decay", o.weight_decay}, {"adam-beta1", o.adam_beta1},
          {"adam-beta2", o.adam_beta2}, {"adam-eps", o.adam_eps}, {"amsgrad", o.amsgrad},
          {"schedule", o.schedule}, {"milestones", o.milestones}, {"lr-gamma", o.lr_gamma}, {"min-lr", o.min_lr},
          {"warmup-iters", o.warmup_iters}, {"warmup-factor", o.warmup_factor}, {"head-lr-mult", o.head_lr_mult},
          {"label-smoothing", o.label_smoothing}, {"reg", o.reg}, {"alpha", o.alpha}, {"beta", o.beta},
          {"reg-params", o.reg_params}, {"reg-decay", o.reg_decay},
          {"fisher", o.fisher}, {"smooth-eps", o.smooth_eps}, {"taps", o.taps}, {"attention", o.attention}, {"project", o.project},
          {"gamma", finite_or_inf(o.gamma)}, {"gamma-head", finite_or_inf(o.gamma_head)},
          {"ptr", o.ptr}, {"ptr-ratio", o.ptr_ratio}, {"ptr-mean", o.ptr_mean}, {"ptr-loss", o.ptr_loss},
          {"ptr-threshold", finite_or_inf(o.ptr_threshold)}, {"dtnh", o.dtnh}, {"dtnh-scope", o.dtnh_scope}, {"seed", o.seed},
          {"threads", o.threads},
          {"device", o.device}, {"tf32", o.tf32}, {"out", o.out}, {"log-interval", o.log_interval},
          {"eval-interval", o.eval_interval}, {"checkpoint-interval", o.checkpoint_interval}, {"diag-interval", o.diag_interval},
          {"save-final", o.save_final}, {"progress", o.progress}};
}

std::vector<std::string> merge_json_args(const std::vector<std::string>& argv, const nlohmann::json& config,
                                         const std::string& origin, const CLI::App& cmd) {
  TETHER_CHECK(config.is_object(), origin, ": expected a JSON object of flag names and values");
  auto given = [&](const std::string& flag) {
    for (const auto& a : argv)
      if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
    return false;
  };
  std::vector<std::string> merged;
  for (const auto& [key, value] : config.items()) {
    const std::string flag = "--" + key;
    TETHER_CHECK(key != "config" && key != "resume" && key != "stop-after", origin, ": key '", key, "' cannot be set from a file");
    TETHER_CHECK(cmd.get_option_no_throw(flag) != nullptr, origin, ": unknown key '", key,
                 "' (keys are the flag names of `tether train`, without the dashes)");
    if (given(flag)) continue;  // the command line wins
    const std::string text = join_value(value);
    if (text.empty()) continue;  // an empty list or string: the default
    merged.push_back(flag + "=" + text);
  }
  merged.insert(merged.end(), argv.begin(), argv.end());
  return merged;
}

}  // namespace tether::train
