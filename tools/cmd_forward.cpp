// `tether forward` (SPEC 9): one forward (and optionally backward) pass of a model with fully
// matching weights on a given batch, written to a safetensors file: `logits` [N, K], `loss`
// (scalar mean cross-entropy, when IN has `target`), and with --grads `grad.<param>` for every
// parameter and `grad.input`. This is the parity interface: other implementations are checked
// against it, so dropout and stochastic depth are always off and --mode only picks BN's statistics.
#include <omp.h>

#include <iostream>
#include <optional>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "layers/dropout.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tools/commands.h"
#include "tools/train/device.h"

namespace tether::cli {

namespace {

struct ForwardOptions {
  std::string model, weights, input, output, mode = "eval";
  int64_t num_classes = 0;
  bool grads = false;
  int threads = 0;  // 0: OpenMP's default
  std::string device = "cpu", tf32 = "conv";
};

struct Batch {
  Tensor input;   // f32 [N, C, H, W]
  Tensor target;  // i64 [N], or undefined
};

Batch read_batch(const std::string& path) {
  safetensors::File file = safetensors::load(path);
  for (const auto& [name, t] : file.tensors)
    TETHER_CHECK(name == "input" || name == "target", "'", path, "': unexpected tensor '", name,
                 "' (expected 'input' and optionally 'target')");
  TETHER_CHECK(file.tensors.count("input"), "'", path, "' has no tensor 'input'");
  Batch b{file.tensors.at("input"), Tensor()};
  TETHER_CHECK(b.input.dtype() == DType::f32 && b.input.dim() == 4, "'", path, "': 'input' must be f32 [N, C, H, W], got ",
               b.input.str());
  if (auto it = file.tensors.find("target"); it != file.tensors.end()) {
    b.target = it->second;
    TETHER_CHECK(b.target.dtype() == DType::i64 && b.target.dim() == 1 && b.target.size(0) == b.input.size(0), "'",
                 path, "': 'target' must be i64 [", b.input.size(0), "] (one class per input), got ", b.target.str());
  }
  return b;
}

void run_forward(const ForwardOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const Batch batch = read_batch(opt.input);
  TETHER_CHECK(!opt.grads || batch.target.defined(), "--grads needs a 'target' in '", opt.input,
               "' (the gradients are those of the loss)");
  models::ModelPtr model = models::create_model(opt.model, {.num_classes = opt.num_classes});
  const models::WeightsReport report = models::load_weights(*model, opt.weights);
  if (!report.head_loaded) {
    std::string why;
    for (const std::string& note : report.notes) why += (why.empty() ? "" : "; ") + note;
    TETHER_FAIL("'", opt.weights, "': tether forward needs every weight, head included, but ", why,
                " (is --num-classes ", opt.num_classes, " the file's?)");
  }

  const Device device = train::setup_device(opt.device, opt.tf32);
  model->to(device);
  model->train(opt.mode == "train");
  model->apply([](const std::string&, nn::Module& m) {  // dropout and stochastic depth are always off
    if (dynamic_cast<nn::Dropout*>(&m) || dynamic_cast<nn::StochasticDepth*>(&m)) m.eval();
  });
  std::optional<NoGradGuard> no_grad;
  if (!opt.grads) no_grad.emplace();
  Tensor x = batch.input.to(device);
  if (opt.grads) x = x.clone().set_requires_grad();

  Tensor logits = (*model)(x);
  std::map<std::string, Tensor> out = {{"logits", logits.detach()}};
  if (batch.target.defined()) {
    Tensor loss = cross_entropy(logits, batch.target.to(device));
    out["loss"] = loss.detach();
    if (opt.grads) {
      loss.backward();
      out["grad.input"] = x.grad();
      for (const auto& [name, p] : model->named_parameters())  // a parameter the loss does not reach: zeros
        out["grad." + name] = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
  }
  safetensors::save(opt.output, out,
                    {{"model", opt.model}, {"num_classes", std::to_string(opt.num_classes)}, {"mode", opt.mode}});
  std::cout << "wrote '" << opt.output << "': logits " << shape_str(logits.shape());
  if (out.count("loss")) std::cout << ", loss " << out["loss"].item<float>();
  if (opt.grads) std::cout << ", " << out.size() - 2 << " gradients";
  std::cout << "\n";
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto opt = std::make_shared<ForwardOptions>();
  auto* cmd = app.add_subcommand("forward", "One forward (and backward) pass with given weights and batch (SPEC 9)");
  cmd->add_option("--model", opt->model, "Model name (see `tether models`)")
      ->required()
      ->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--num-classes", opt->num_classes, "Number of classes of the weights' head")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--weights", opt->weights, "Weights (.safetensors), head included")->required()->check(CLI::ExistingFile);
  cmd->add_option("--input", opt->input, "Batch (.safetensors): 'input' f32 [N,C,H,W], optionally 'target' i64 [N]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", opt->output, "Where to write logits, loss and gradients (.safetensors)")->required();
  cmd->add_option("--mode", opt->mode, "eval: BN running statistics; train: BN batch statistics")
      ->capture_default_str()
      ->check(CLI::IsMember({"eval", "train"}));
  cmd->add_flag("--grads", opt->grads, "Also write grad.<param> for every parameter and grad.input (needs 'target')");
  cmd->add_option("--threads", opt->threads, "CPU threads (default: OpenMP's)")->check(CLI::PositiveNumber);
  cmd->add_option("--device", opt->device, "cpu or cuda[:N]")->capture_default_str();
  cmd->add_option("--tf32", opt->tf32, "CUDA float32 math: conv (PyTorch's default), all, none (strict float32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"conv", "all", "none"}));
  cmd->callback([opt] { run_forward(*opt); });
}

}  // namespace tether::cli
