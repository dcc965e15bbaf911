// The `tether` binary and tools/convert_torch.py, run as a user would: `tether forward` against
// the same computation through the library (equal to the bit: same code, same thread count) and
// SPEC 9's output contents; `tether inspect` listings and exit codes (0 loads, 2 does not);
// flag errors naming the culprit; a converted PyTorch checkpoint read back by `tether inspect`.
#include <omp.h>

#include <set>

#include "core/safetensors.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tests/parity/parity_util.h"
#include "tests/tools/files.h"

using namespace tether;
using testing::contains;
using testing::RunResult;

namespace {

RunResult tether_cli(const std::string& args) { return testing::run_command("'" TETHER_BINARY_DIR "/tether' " + args); }

// Weights of a resnet18 with 10 classes and non-trivial BN running statistics (eval != train),
// made once (creating a model takes a while).
const std::map<std::string, Tensor>& resnet18_weights() {
  static const std::map<std::string, Tensor> weights = [] {
    const models::ModelPtr model = models::create_model("resnet18", {.num_classes = 10});
    std::map<std::string, Tensor> out;
    uint64_t seed = 100;
    for (const auto& [name, t] : model->state_dict()) {
      if (contains(name, "running_mean")) out[name] = testing::randn(t.shape(), ++seed, DType::f32);
      else if (contains(name, "running_var")) out[name] = testing::uniform(t.shape(), 0.5, 1.5, ++seed, DType::f32);
      else out[name] = t.clone();
    }
    return out;
  }();
  return weights;
}

// What `tether forward --grads --threads 1` should write, computed through the library on one
// thread too (equal to the bit needs the same thread count; one is also the fastest on a busy
// machine). Loads the weights each time: a train-mode forward updates the BN running statistics.
std::map<std::string, Tensor> library_forward(models::Model& model, const std::string& weights, const Tensor& input,
                                              const Tensor& target, bool train) {
  struct OneThread {
    int saved = omp_get_max_threads();
    OneThread() { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(saved); }
  } one_thread;
  REQUIRE(models::load_weights(model, weights).head_loaded);
  model.train(train);  // resnet18 has no dropout or stochastic depth
  model.zero_grad();
  Tensor x = input.clone().set_requires_grad();
  Tensor logits = model(x);
  Tensor loss = cross_entropy(logits, target);
  loss.backward();
  std::map<std::string, Tensor> out = {{"logits", logits}, {"loss", loss}, {"grad.input", x.grad()}};
  for (const auto& [name, p] : model.named_parameters()) out["grad." + name] = p.grad();
  return out;
}

}  // namespace

TEST_SUITE("tools") {
  TEST_CASE("tether forward equals the library (eval and train, with gradients) and writes SPEC 9's names") {
    testing::TempDir dir;
    const std::string weights = dir.file("w.safetensors"), in = dir.file("in.safetensors"), out = dir.file("out.safetensors");
    safetensors::save(weights, resnet18_weights());
    const Tensor input = testing::randn({2, 3, 32, 32}, 1, DType::f32);
    const Tensor target = Tensor::from_vector<int64_t>({3, 7}, {2});
    safetensors::save(in, {{"input", input}, {"target", target}});
    const std::string common = "forward --model resnet18 --num-classes 10 --weights " + weights + " --input " + in +
                               " --output " + out + " --threads 1";

    const models::ModelPtr model = models::create_model("resnet18", {.num_classes = 10});
    std::vector<float> eval_logits;
    for (const std::string mode : {"eval", "train"}) {
      CAPTURE(mode);
      const RunResult r = tether_cli(common + " --grads --mode " + mode);
      INFO(r.output);
      REQUIRE(r.code == 0);
      const safetensors::File file = safetensors::load(out);
      const std::map<std::string, Tensor> want = library_forward(*model, weights, input, target, mode == "train");
      std::set<std::string> got_names, want_names;
      for (const auto& [name, t] : file.tensors) got_names.insert(name);
      for (const auto& [name, t] : want) want_names.insert(name);
      CHECK(got_names == want_names);
      if (mode == "eval") eval_logits = want.at("logits").to_vector<float>();
      CHECK(file.tensors.at("logits").shape() == Shape{2, 10});
      CHECK(file.tensors.at("loss").shape() == Shape{});
      CHECK(file.tensors.at("grad.input").shape() == input.shape());
      for (const auto& [name, t] : want) {
        CAPTURE(name);
        if (!file.tensors.count(name)) continue;
        const Tensor& got = file.tensors.at(name);
        CHECK(got.dtype() == DType::f32);
        CHECK(got.shape() == t.shape());
        CHECK(got.to_vector<float>() == t.to_vector<float>());
      }
    }

    // No target: the same logits only (computed without recording a graph); --grads then needs one.
    safetensors::save(in, {{"input", input}});
    RunResult r = tether_cli(common);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const safetensors::File file = safetensors::load(out);
    CHECK(file.tensors.size() == 1);
    CHECK(file.tensors.at("logits").to_vector<float>() == eval_logits);
    r = tether_cli(common + " --grads");
    CHECK(r.code == 1);
    CHECK(contains(r.output, "tether: "));
    CHECK(contains(r.output, "target"));
  }

  TEST_CASE("tether models lists the registry") {
    const RunResult r = tether_cli("models");
    CHECK(r.code == 0);
    std::string expected;
    for (const std::string& name : models::model_names()) expected += name + "\n";
    CHECK(r.output == expected);
  }

  TEST_CASE("tether forward and inspect: bad flags and files exit non-zero naming the culprit") {
    testing::TempDir dir;
    const std::string weights = dir.file("w.safetensors"), in = dir.file("in.safetensors");
    safetensors::save(weights, resnet18_weights());
    safetensors::save(in, {{"input", testing::randn({1, 3, 32, 32}, 2, DType::f32)}});
    auto forward = [&](const std::string& model, const std::string& classes, const std::string& w, const std::string& extra) {
      return tether_cli("forward --model " + model + " --num-classes " + classes + " --weights " + w + " --input " + in +
                        " --output " + dir.file("out.safetensors") + extra);
    };
    struct Case {
      RunResult result;
      std::vector<std::string> expected;  // in the message
    };
    const Case cases[] = {
        {forward("resnet9", "10", weights, ""), {"--model", "resnet9"}},
        {forward("resnet18", "10", dir.file("absent.safetensors"), ""), {"--weights", "absent.safetensors"}},
        {forward("resnet18", "10", weights, " --mode bogus"), {"--mode", "bogus"}},
        {forward("resnet18", "ten", weights, ""), {"--num-classes", "ten"}},
        {forward("resnet18", "10", weights, " --frobnicate"), {"--frobnicate"}},
        {forward("resnet18", "5", weights, ""), {"tether: ", "head", "--num-classes 5"}},  // the head must load
        {tether_cli("inspect " + dir.file("absent.safetensors")), {"absent.safetensors"}},
        {tether_cli("inspect " + weights + " --model bogus"), {"--model", "bogus"}},
        {tether_cli("inspect " + in + " --num-classes 0"), {"--num-classes"}},
    };
    for (const Case& c : cases) {
      INFO(c.result.output);
      CHECK(c.result.code != 0);
      for (const std::string& e : c.expected) CHECK(contains(c.result.output, e));
    }
  }

  TEST_CASE("tether inspect: listing, format, differences from a model, exit codes") {
    testing::TempDir dir;
    const std::string path = dir.file("w.safetensors");
    std::map<std::string, Tensor> weights = resnet18_weights();
    safetensors::save(path, weights, {{"source", "test"}});

    RunResult r = tether_cli("inspect " + path);
    INFO(r.output);
    CHECK(r.code == 0);
    for (const std::string part : {"122 tensors", "conv1.weight", "F32", "[64, 3, 7, 7]", "37632", "bn1.num_batches_tracked",
                                   "I64", "source: test", "total: 122 tensors, 11191262 elements"})
      CHECK(contains(r.output, part));

    r = tether_cli("inspect " + path + " --model resnet18 --num-classes 10");
    CHECK(r.code == 0);
    CHECK(contains(r.output, "format torchvision"));
    CHECK(contains(r.output, "result: loads, head included"));

    r = tether_cli("inspect " + path + " --model resnet18 --num-classes 5");  // a new task: the head is skipped
    CHECK(r.code == 0);
    CHECK(contains(r.output, "fc.weight: file [10, 512] vs model [5, 512]"));
    CHECK(contains(r.output, "head 'fc' not loaded"));

    weights.erase("layer3.1.conv2.weight");
    weights["extra.weight"] = Tensor::zeros({2});
    weights["conv1.weight"] = Tensor::zeros({64, 3, 3, 3});
    safetensors::save(path, weights);
    r = tether_cli("inspect " + path + " --model resnet18 --num-classes 10");
    CHECK(r.code == 2);
    CHECK(contains(r.output, "missing from the file (1):\n    layer3.1.conv2.weight"));
    CHECK(contains(r.output, "unexpected in the file (1):\n    extra.weight"));
    CHECK(contains(r.output, "conv1.weight: file [64, 3, 3, 3] vs model [64, 3, 7, 7]"));
    CHECK(contains(r.output, "result: does not load"));

    testing::write_bytes(path, testing::read_bytes(path).substr(0, 100));  // damaged: a library error
    r = tether_cli("inspect " + path);
    CHECK(r.code == 1);
    CHECK(contains(r.output, "tether: "));
    CHECK(contains(r.output, "truncated"));
  }

  TEST_CASE("convert_torch.py: a nested DataParallel checkpoint round-trips through tether inspect") {
    if (!parity::torch_available()) {
      MESSAGE("SKIP convert_torch.py: /usr/bin/python3 cannot import torch");
      return;
    }
    testing::TempDir dir;
    const std::string checkpoint = dir.file("model_best.pth.tar"), script = dir.file("make.py");
    testing::write_bytes(script, R"(import collections, sys, torch
state = collections.OrderedDict()
state["module.conv.weight"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
state["module.bn.num_batches_tracked"] = torch.tensor(5)
state["module.half"] = torch.tensor([1.5, -2.0], dtype=torch.float16)
state["module.steps"] = 3
torch.save({"epoch": 7, "arch": "tiny", "state_dict": state}, sys.argv[1])
)");
    RunResult r = testing::run_command("/usr/bin/python3 " + script + " " + checkpoint);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const std::string convert = "/usr/bin/python3 '" TETHER_SOURCE_DIR "/tools/convert_torch.py' " + checkpoint;

    r = testing::run_command(convert);
    INFO(r.output);
    REQUIRE(r.code == 0);
    for (const std::string part : {"model_best.safetensors", "3 tensors", "from 'state_dict'", "epoch", "skipped 'module.steps'",
                                   "stripped 'module.' from 3 names"})
      CHECK(contains(r.output, part));
    const std::string converted = dir.file("model_best.safetensors");
    r = tether_cli("inspect " + converted);
    CHECK(r.code == 0);
    for (const std::string part : {"conv.weight", "[2, 3, 2, 2]", "bn.num_batches_tracked", "I64", "half", "F16",
                                   "source: model_best.pth.tar", "total: 3 tensors, 27 elements, 108 bytes"})
      CHECK(contains(r.output, part));
    CHECK(!contains(r.output, "module."));
    const safetensors::File file = safetensors::load(converted);
    std::vector<float> ramp(24);
    for (int i = 0; i < 24; ++i) ramp[i] = static_cast<float>(i);
    CHECK(file.tensors.at("conv.weight").to_vector<float>() == ramp);
    CHECK(file.tensors.at("bn.num_batches_tracked").item<int64_t>() == 5);
    CHECK(file.tensors.at("half").to_vector<float>() == std::vector<float>{1.5f, -2.0f});

    r = testing::run_command(convert + " " + dir.file("f32.safetensors") + " --dtype f32");
    INFO(r.output);
    REQUIRE(r.code == 0);
    r = tether_cli("inspect " + dir.file("f32.safetensors"));
    CHECK(contains(r.output, "F32    [2]"));  // half, now float32
    CHECK(contains(r.output, "total: 3 tensors, 27 elements, 112 bytes"));
  }
}
