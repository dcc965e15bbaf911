// models::load_weights on a real model (resnet18, 10 classes) and files written here: every
// fault gives one error naming the key or the damage (missing, unexpected, shape mismatch with
// both shapes, truncated file, corrupt header, header length beyond the file) and changes
// nothing; a head of another shape is skipped (head_loaded false) while the rest loads.
#include "core/safetensors.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tests/test_util.h"
#include "tests/tools/files.h"

using namespace tether;
using testing::contains;

namespace {

// The weights of a resnet18 with 10 classes, made once (creating a model takes a while).
const std::map<std::string, Tensor>& source_weights() {
  static const std::map<std::string, Tensor> weights = [] {
    std::map<std::string, Tensor> out;
    for (const auto& [name, t] : models::create_model("resnet18", {.num_classes = 10})->state_dict()) out[name] = t.clone();
    return out;
  }();
  return weights;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

Tensor param(const models::Model& model, const std::string& name) {
  for (const auto& [n, t] : model.state_dict())
    if (n == name) return t;
  TETHER_FAIL("no tensor ", name);
}

// The message load_weights throws for `path` ("no error" if it loads); checks that a failed
// load left the model as it was.
std::string load_error(models::Model& model, const std::string& path) {
  const Tensor before = param(model, "conv1.weight").clone();
  try {
    models::load_weights(model, path);
  } catch (const Error& e) {
    CHECK(same_values(param(model, "conv1.weight"), before));
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("load_weights: missing, unexpected and mismatched keys are named") {
    testing::TempDir dir;
    const models::ModelPtr model = models::create_model("resnet18", {.num_classes = 10});
    const std::map<std::string, Tensor>& good = source_weights();
    const std::string path = dir.file("w.safetensors");

    std::map<std::string, Tensor> w = good;
    w.erase("layer2.0.bn1.running_mean");
    safetensors::save(path, w);
    std::string err = load_error(*model, path);
    CHECK(contains(err, "missing"));
    CHECK(contains(err, "layer2.0.bn1.running_mean"));
    CHECK(contains(err, path));

    w = good;
    w["layer9.weight"] = Tensor::zeros({3});
    safetensors::save(path, w);
    err = load_error(*model, path);
    CHECK(contains(err, "unexpected"));
    CHECK(contains(err, "layer9.weight"));

    w = good;
    w["conv1.weight"] = Tensor::zeros({64, 3, 5, 5});
    safetensors::save(path, w);
    err = load_error(*model, path);
    CHECK(contains(err, "conv1.weight"));
    CHECK(contains(err, "[64, 3, 5, 5]"));
    CHECK(contains(err, "[64, 3, 7, 7]"));

    safetensors::save(path, good);
    CHECK(load_error(*model, path) == "no error");
    CHECK(same_values(param(*model, "conv1.weight"), good.at("conv1.weight")));
  }

  TEST_CASE("load_weights: damaged files (truncated, corrupt header, header length beyond the file)") {
    testing::TempDir dir;
    const models::ModelPtr model = models::create_model("resnet18", {.num_classes = 10});
    const std::string good_path = dir.file("good.safetensors"), path = dir.file("bad.safetensors");
    safetensors::save(good_path, source_weights());
    const std::string bytes = testing::read_bytes(good_path);

    testing::write_bytes(path, bytes.substr(0, bytes.size() / 2));
    std::string err = load_error(*model, path);
    CHECK(contains(err, "truncated"));
    CHECK(contains(err, path));

    std::string corrupt = bytes;
    corrupt[8] = '#';  // the header's opening brace
    testing::write_bytes(path, corrupt);
    err = load_error(*model, path);
    CHECK(contains(err, "not valid JSON"));
    CHECK(contains(err, path));

    std::string beyond = bytes;
    const uint64_t len = bytes.size();  // more header than the file holds
    for (int i = 0; i < 8; ++i) beyond[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    testing::write_bytes(path, beyond);
    err = load_error(*model, path);
    CHECK(contains(err, "header claims"));
    CHECK(contains(err, path));
  }

  TEST_CASE("load_weights: a head of another shape is skipped, a matching head loads") {
    testing::TempDir dir;
    const std::string path = dir.file("w.safetensors");
    const models::ModelPtr model = models::create_model("resnet18", {.num_classes = 10});
    const Tensor fresh_head = param(*model, "fc.weight").clone();

    const std::map<std::string, Tensor>& same_task = source_weights();
    REQUIRE(!same_values(same_task.at("fc.weight"), fresh_head));
    std::map<std::string, Tensor> imagenet = same_task;  // an ImageNet head: 1000 classes
    imagenet["fc.weight"] = testing::randn({1000, 512}, 1, DType::f32);
    imagenet["fc.bias"] = testing::randn({1000}, 2, DType::f32);
    safetensors::save(path, imagenet);
    models::WeightsReport report = models::load_weights(*model, path);
    CHECK(report.format == "torchvision");
    CHECK_FALSE(report.head_loaded);
    REQUIRE(!report.notes.empty());
    CHECK(contains(report.notes[0], "fc"));
    CHECK(same_values(param(*model, "layer3.1.conv2.weight"), imagenet.at("layer3.1.conv2.weight")));
    CHECK(same_values(param(*model, "fc.weight"), fresh_head));

    safetensors::save(path, same_task);
    report = models::load_weights(*model, path);
    CHECK(report.head_loaded);
    CHECK(report.notes.empty());
    CHECK(same_values(param(*model, "fc.weight"), same_task.at("fc.weight")));
  }
}
