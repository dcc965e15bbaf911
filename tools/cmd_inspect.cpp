// `tether inspect FILE [--model M] [--num-classes K]`: lists a safetensors file's tensors (name,
// dtype as stored, shape, bytes), its metadata and the totals. With --model, also says which
// naming was detected (torchvision/timm), what is missing, unexpected or shape-mismatched
// relative to the model, and whether `load_weights` would accept it: exit code 0 if so, 2 if not.
#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "models/registry.h"
#include "models/weights.h"
#include "tools/commands.h"

namespace tether::cli {

namespace {

struct Stored {
  std::string dtype;  // as in the file (safetensors::load converts F16/BF16/I32 on reading)
  uint64_t bytes = 0;
};

// The header's dtype and byte count per tensor. Call after safetensors::load has validated the file.
std::map<std::string, Stored> stored_entries(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  std::string text(len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(len));
  TETHER_CHECK(in.good(), "'", path, "' changed while being read");
  std::map<std::string, Stored> out;
  const nlohmann::json header = nlohmann::json::parse(text);
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const nlohmann::json& off = it.value().at("data_offsets");
    out[it.key()] = {it.value().at("dtype").get<std::string>(), off.at(1).get<uint64_t>() - off.at(0).get<uint64_t>()};
  }
  return out;
}

void print_tensors(const std::string& path, const safetensors::File& file) {
  const std::map<std::string, Stored> stored = stored_entries(path);
  size_t width = 4;
  for (const std::string& name : file.order) width = std::max(width, name.size());
  std::cout << "'" << path << "': " << file.order.size() << " tensors\n";
  std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << "name" << "  " << std::setw(5) << "dtype"
            << "  " << std::setw(20) << "shape" << "  bytes\n";
  int64_t elements = 0;
  uint64_t bytes = 0;
  for (const std::string& name : file.order) {
    const Tensor& t = file.tensors.at(name);
    const Stored& s = stored.at(name);
    std::cout << "  " << std::setw(static_cast<int>(width)) << name << "  " << std::setw(5) << s.dtype << "  "
              << std::setw(20) << shape_str(t.shape()) << "  " << s.bytes << "\n";
    elements += t.numel();
    bytes += s.bytes;
  }
  if (!file.metadata.empty()) {
    std::cout << "metadata (" << file.metadata.size() << "):\n";
    for (const auto& [key, value] : file.metadata) std::cout << "  " << key << ": " << value << "\n";
  }
  std::cout << "total: " << file.order.size() << " tensors, " << elements << " elements, " << bytes << " bytes\n";
}

// Compares the file with a fresh model; returns whether load_weights accepts it.
bool check_against_model(const std::string& path, const safetensors::File& file, const std::string& model_name,
                         int64_t num_classes) {
  models::ModelPtr model = models::create_model(model_name, {.num_classes = num_classes});
  std::cout << "model " << model_name << " (" << num_classes << " classes): ";
  std::string format;
  std::map<std::string, Tensor> mapped;
  try {
    mapped = models::to_torchvision_names(file.tensors, *model, &format);
  } catch (const Error& e) {
    std::cout << "names cannot be mapped: " << e.what() << "\nresult: does not load\n";
    return false;
  }
  std::cout << "format " << format << "\n";
  const nn::LoadReport report = model->check_state_dict(mapped);
  if (report.ok()) std::cout << "every model tensor is in the file with its shape, nothing else is\n";
  else std::cout << "differences from the model (after name mapping):" << report.str() << "\n";
  try {
    const models::WeightsReport loaded = models::load_weights(*model, file.tensors, "'" + path + "'");
    std::cout << "result: loads" << (loaded.head_loaded ? ", head included" : ", head '" + model->head_name() + "' not loaded")
              << "\n";
    for (const std::string& note : loaded.notes) std::cout << "  note: " << note << "\n";
    return true;
  } catch (const Error&) {  // the differences printed above say why
    std::cout << "result: does not load\n";
    return false;
  }
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  struct Options {
    std::string file, model;
    int64_t num_classes = 1000;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("inspect", "List a safetensors file's tensors; with --model, check that it loads (exit 2 if not)");
  cmd->add_option("file", opt->file, "Weights file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--model", opt->model, "Check the file against this model (see `tether models`)")
      ->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--num-classes", opt->num_classes, "The model's number of classes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([opt] {
    const safetensors::File file = safetensors::load(opt->file);
    print_tensors(opt->file, file);
    if (!opt->model.empty() && !check_against_model(opt->file, file, opt->model, opt->num_classes))
      throw CLI::RuntimeError(2);
  });
}

}  // namespace tether::cli
