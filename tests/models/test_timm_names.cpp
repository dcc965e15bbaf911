// timm-named weights through models::load_weights: tests/parity/ref_timm.py renames seeded
// torchvision resnet18, vgg16 and efficientnet_b0 state dicts to timm's names and layouts (its
// own mapping, independent of models/weights.cpp) and records torchvision's eval-mode logits;
// here the renamed weights load (format "timm"; ResNet's timm names are torchvision's) and the
// model reproduces those logits within 1e-5 relative error (‖got − want‖ / ‖want‖).
#include "autograd/grad_mode.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tests/parity/parity_util.h"

using namespace tether;

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string part; std::getline(s, part, sep);) out.push_back(part);
  return out;
}

void check_timm(const std::string& name, const std::string& format) {
  CAPTURE(name);
  auto ref = parity::reference("ref_timm.py");
  if (!ref) return;
  std::map<std::string, Tensor> weights;
  for (const std::string& key : split(ref->metadata().at(name + ".names"), ','))
    weights[key] = ref->at(name + ".w." + key);
  const models::ModelPtr model = models::create_model(name, {.num_classes = 10});
  const models::WeightsReport report = models::load_weights(*model, weights, "ref_timm.py " + name);
  CHECK(report.format == format);
  CHECK(report.head_loaded);
  if (name == "efficientnet_b0") {  // the file has no num_batches_tracked: tolerated, with notes
    REQUIRE(!report.notes.empty());
    CHECK(report.notes[0].find("num_batches_tracked") != std::string::npos);
  }
  model->eval();
  NoGradGuard no_grad;
  const Tensor logits = (*model)(ref->at(name + ".input"));
  const Tensor& want = ref->at(name + ".logits");
  REQUIRE(logits.shape() == want.shape());
  const double error = ops::norm(ops::binary(ops::Binary::sub, logits, want), 2.0) / ops::norm(want, 2.0);
  INFO(name << " logits: relative error " << error);
  CHECK(error <= 1e-5);
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("timm names: resnet18 (identical to torchvision's)") { check_timm("resnet18", "torchvision"); }
  TEST_CASE("timm names: vgg16 (pre_logits convs, head.fc)") { check_timm("vgg16", "timm"); }
  TEST_CASE("timm names: efficientnet_b0 (blocks, no num_batches_tracked)") { check_timm("efficientnet_b0", "timm"); }
}
