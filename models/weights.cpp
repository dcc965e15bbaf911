#include "models/weights.h"

#include <regex>

#include "core/safetensors.h"

namespace tether::models {

namespace {

bool has(const std::map<std::string, Tensor>& m, const std::string& key) { return m.count(key) > 0; }

// timm's efficientnet_b0 -> torchvision's: conv_stem/bn1 -> features.0; blocks.S.B.* ->
// features.(S+1).B.block.K.*; conv_head/bn2 -> features.8; classifier -> classifier.1.
std::string efficientnet_name(const std::string& name) {
  static const std::regex block(R"(blocks\.(\d+)\.(\d+)\.(\w+)\.(.*))");
  std::smatch m;
  auto replace_prefix = [&](const std::string& from, const std::string& to) -> std::string {
    return name.rfind(from, 0) == 0 ? to + name.substr(from.size()) : std::string();
  };
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"conv_stem.", "features.0.0."}, {"bn1.", "features.0.1."}, {"conv_head.", "features.8.0."},
           {"bn2.", "features.8.1."}, {"classifier.", "classifier.1."}})
    if (std::string r = replace_prefix(from, to); !r.empty()) return r;
  if (!std::regex_match(name, m, block)) return name;
  const int stage = std::stoi(m[1]);
  const std::string prefix = "features." + std::to_string(stage + 1) + "." + m[2].str() + ".block.";
  std::string part = m[3], rest = m[4];
  if (part == "se") {  // se.conv_reduce.* / se.conv_expand.*
    const std::string which = rest.rfind("conv_reduce.", 0) == 0 ? "fc1." : "fc2.";
    rest = rest.substr(rest.find('.') + 1);
    return prefix + (stage == 0 ? "1." : "2.") + which + rest;
  }
  // Stage 0 is timm's DepthwiseSeparable (dw, se, pw); later stages InvertedResidual (pw, dw, se, pwl).
  static const std::map<std::string, std::string> ds = {{"conv_dw", "0.0"}, {"bn1", "0.1"}, {"conv_pw", "2.0"}, {"bn2", "2.1"}};
  static const std::map<std::string, std::string> ir = {{"conv_pw", "0.0"}, {"bn1", "0.1"}, {"conv_dw", "1.0"},
                                                        {"bn2", "1.1"},     {"conv_pwl", "3.0"}, {"bn3", "3.1"}};
  const auto& table = stage == 0 ? ds : ir;
  auto it = table.find(part);
  return it == table.end() ? name : prefix + it->second + "." + rest;
}

// timm's vgg: features.* as torchvision; pre_logits.fc1/fc2 (7x7 and 1x1 convs) and head.fc
// -> classifier.0/3/6 (linear: the conv weights flattened to [out, in*7*7]).
std::pair<std::string, Tensor> vgg_entry(const std::string& name, const Tensor& t) {
  auto as_linear = [&](const std::string& to) {
    return std::make_pair(to, t.dim() == 4 ? ops::reshape(t, {t.size(0), -1}) : t);
  };
  if (name.rfind("pre_logits.fc1.", 0) == 0) return as_linear("classifier.0." + name.substr(15));
  if (name.rfind("pre_logits.fc2.", 0) == 0) return as_linear("classifier.3." + name.substr(15));
  if (name.rfind("head.fc.", 0) == 0) return as_linear("classifier.6." + name.substr(8));
  return {name, t};
}

}  // namespace

std::map<std::string, Tensor> to_torchvision_names(const std::map<std::string, Tensor>& tensors, const Model& model,
                                                   std::string* format) {
  const bool timm_effnet = has(tensors, "conv_stem.weight");
  const bool timm_vgg = has(tensors, "pre_logits.fc1.weight") || has(tensors, "head.fc.weight");
  if (format) *format = timm_effnet || timm_vgg ? "timm" : "torchvision";
  if (!timm_effnet && !timm_vgg) return tensors;  // timm's ResNet names are torchvision's
  TETHER_CHECK(!timm_effnet || model.type_name() == "EfficientNet", "timm EfficientNet weights for a ",
               model.type_name(), " model");
  TETHER_CHECK(!timm_vgg || model.type_name() == "VGG", "timm VGG weights for a ", model.type_name(), " model");
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) {
    auto [mapped, value] = timm_effnet ? std::make_pair(efficientnet_name(name), t) : vgg_entry(name, t);
    out[mapped] = value;
  }
  return out;
}

WeightsReport load_weights(Model& model, const std::string& path) {
  return load_weights(model, safetensors::load(path).tensors, "'" + path + "'");
}

WeightsReport load_weights(Model& model, const std::map<std::string, Tensor>& tensors, const std::string& origin) {
  WeightsReport report;
  std::map<std::string, Tensor> values = to_torchvision_names(tensors, model, &report.format);
  const std::string head = model.head_name() + ".";
  // The head loads only when every head tensor is present with the model's shape.
  bool head_matches = true, head_present = false;
  for (const auto& [name, t] : model.state_dict()) {
    if (name.rfind(head, 0) != 0) continue;
    auto it = values.find(name);
    head_present = head_present || it != values.end();
    head_matches = head_matches && it != values.end() && it->second.shape() == t.shape();
  }
  if (!head_matches) {
    for (auto it = values.begin(); it != values.end();)
      it = it->first.rfind(head, 0) == 0 ? values.erase(it) : std::next(it);
    report.notes.push_back(head_present ? "head '" + model.head_name() + "' has another shape in the file: kept its fresh init"
                                        : "no head in the file: kept its fresh init");
  }
  nn::LoadReport r = model.check_state_dict(values);
  std::vector<std::string> missing;
  for (const std::string& name : r.missing) {
    if (name.rfind(head, 0) == 0 && !head_matches) continue;
    if (name.ends_with(".num_batches_tracked")) {
      report.notes.push_back("absent " + name + ": left at 0");
      continue;
    }
    missing.push_back(name);
  }
  r.missing = missing;
  TETHER_CHECK(r.ok(), origin, " does not match model ", model.name, " (", report.format, " names):", r.str());
  model.load_state_dict(values, /*strict=*/false);  // checked above: only tolerated keys are absent
  report.head_loaded = head_matches;
  return report;
}

}  // namespace tether::models
