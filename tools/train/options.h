// Every option of `tether train` (SPEC 8 and 9, timm's names), in one struct. The same names
// are the command-line flags, the keys of --config FILE.json and of the run's args.json.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace tether::train {

struct TrainOptions {
  // ---- model and weights (SPEC 1) ----
  std::string model;
  std::string weights;             // w0; empty: train from the architecture's init (w0 = init)
  std::string init;                // other starting values (penalties still refer to w0)
  int64_t num_classes = 0;         // 0: from the data
  std::vector<std::string> freeze; // module names or dotted prefixes (their parameters stop training, their BN uses running stats)
  int64_t freeze_blocks = 0;       // freeze the first N blocks of the architecture (Model::blocks)
  std::string bn = "train";        // train | eval | frozen
  // ---- data (SPEC 9) ----
  std::string data;                // ImageFolder root (train/, val/ or test/), or "fashion-mnist";
                                   // with list files: the folder their paths are relative to
  std::string train_list, val_list;  // "relative/path label" lines (Caltech-256, MIT-67 splits)
  std::vector<int64_t> classes;    // keep only these classes, relabelled in this order
  int64_t per_class = 0;           // few-shot: K training images per class (0: all)
  int64_t test_per_class = 0;      // Caltech protocol: the next M per class are the evaluation set
  double val_split = 0;            // > 0: validate on this seeded fraction of the training set
  int64_t input_size = 224;
  int64_t resize_size = 0;         // 0: input_size / 0.875
  std::string augment = "rrc";
  std::string interpolation = "bilinear";
  std::vector<float> mean{0.485f, 0.456f, 0.406f};
  std::vector<float> std{0.229f, 0.224f, 0.225f};
  bool mean_subtract = false;      // L2-SP: subtract the training set's per-channel mean instead
  std::string shuffle = "epoch";   // epoch | none
  int64_t workers = 2;
  std::string on_bad_image = "skip";
  bool ten_crop = false;
  // ---- optimisation (SPEC 8) ----
  int64_t batch_size = 32;
  int64_t eval_batch_size = 0;     // 0: batch_size
  int64_t epochs = 0;
  int64_t iters = 0;               // overrides epochs when > 0
  std::string optimizer = "sgd";
  double lr = 0.01;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  bool amsgrad = false;
  std::string schedule = "const";
  std::vector<int64_t> milestones;
  double lr_gamma = 0.1;
  double min_lr = 0;
  int64_t warmup_iters = 0;
  double warmup_factor = 0.1;
  double head_lr_mult = 1;
  double label_smoothing = 0;
  // ---- method (SPEC 2) ----
  std::string reg = "none";
  double alpha = 0, beta = 0;
  std::string fisher;        // --fisher FILE (l2sp-fisher, glsp-fisher)
  double smooth_eps = 1e-8;  // --smooth-eps (l1sp, glsp, glsp-fisher)
  std::vector<std::string> taps;  // --taps (kd, delta; SPEC 5): module names; empty: the model's defaults
  std::string attention;          // --attention FILE (delta): the output of `tether attention`
  std::string reg_params = "weights";
  double reg_decay = 1;
  // ---- projection (SPEC 3) ----
  std::string project = "none";    // none | l2-pgm | mars-pgm
  double gamma = std::numeric_limits<double>::infinity();       // radius for S (inf: off)
  double gamma_head = std::numeric_limits<double>::infinity();  // radius for S̄ (inf: off)
  // ---- PtR (SPEC 6) and DTNH (SPEC 7) ----
  bool ptr = false;                 // --ptr: add the pseudo regression task on rep
  double ptr_ratio = 3, ptr_mean = 1;
  std::string ptr_loss = "sml1";    // sml1 | l2
  double ptr_threshold = 1.0;       // switch on after an epoch with mean CE below this (inf: at once)
  bool dtnh = false;                // --dtnh: the corrected descent direction (needs a penalty)
  std::string dtnh_scope = "global";  // global | tensor
  // ---- run ----
  uint64_t seed = 0;
  int64_t threads = 0;             // 0: all cores
  std::string device = "cpu";
  std::string tf32 = "conv";       // --tf32: conv (PyTorch's default), all, none (strict float32)
  std::string out;
  int64_t log_interval = 10;
  int64_t eval_interval = 0;       // iterations; 0: at the end of every epoch
  int64_t checkpoint_interval = 0; // iterations; 0: at every evaluation
  int64_t diag_interval = 0;       // iterations between diagnostics.csv rows; 0: at every evaluation
  std::string resume;               // not in args.json: says how this process started
  int64_t stop_after = 0;           // stop as if interrupted after this step (not in args.json)
  std::string save_final;
  std::string progress = "auto";   // auto | bar | plain | none
};

// Registers every flag of TrainOptions on `cmd`, bound to `opts` (CLI11 checks ranges and
// choices as it parses, naming the flag).
void add_train_flags(CLI::App& cmd, TrainOptions& opts);
// The flags that describe an evaluation pipeline (input size, resize, interpolation, mean/std,
// the training run's --augment, workers, threads), shared by `tether eval` and `tether fisher`.
void add_eval_pipeline_flags(CLI::App& cmd, TrainOptions& opts);
// The checks that involve several flags or the file system; throws tether::Error naming the flag.
void validate(const TrainOptions& opts);
// Every resolved option under its flag name (args.json).
nlohmann::json to_json(const TrainOptions& opts);

// --config FILE.json / --resume DIR: the JSON's keys are flag names; flags on the command line
// win. Returns argv with "--key=value" inserted for every key the command line does not set.
// Unknown keys are an error naming the key and the file.
std::vector<std::string> merge_json_args(const std::vector<std::string>& argv, const nlohmann::json& config,
                                         const std::string& origin, const CLI::App& cmd);

}  // namespace tether::train
