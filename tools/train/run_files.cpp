#include "tools/train/run_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/check.h"
#include "core/safetensors.h"

namespace tether::train {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TETHER_CHECK(out.good(), "cannot write '", tmp, "': ", std::strerror(errno));
    out << text;
    out.flush();
    TETHER_CHECK(out.good(), "writing '", tmp, "' failed (disk full?)");
  }
  TETHER_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "': ",
               std::strerror(errno));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TETHER_CHECK(in.good(), "cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    TETHER_FAIL("'", path, "' is not valid JSON: ", e.what());
  }
}

int64_t jsonl_step(const std::string& line) {
  try {
    const auto j = nlohmann::json::parse(line);
    return j.contains("step") ? j["step"].get<int64_t>() : -1;
  } catch (const nlohmann::json::exception&) {
    return INT64_MAX;  // a torn last line from a killed run: dropped on resume
  }
}

int64_t csv_step(const std::string& line) {
  if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) return -1;
  return std::stoll(line);
}

void LineLog::open(const std::string& path, bool resume, int64_t keep_up_to_step,
                   int64_t (*step_of)(const std::string& line)) {
  std::string kept;
  if (resume) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      if (step_of(line) <= keep_up_to_step) kept += line + "\n", ++lines_;
    write_file_atomic(path, kept);
  }
  out_.open(path, resume ? std::ios::app : std::ios::trunc);
  TETHER_CHECK(out_.good(), "cannot write '", path, "': ", std::strerror(errno));
}

void LineLog::write(const std::string& line) {
  out_ << line << '\n';
  out_.flush();
  ++lines_;
}

namespace {

std::map<std::string, Tensor> model_state(const models::Model& model) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : model.state_dict()) out.emplace(name, t);
  return out;
}

}  // namespace

void save_weights(const std::string& path, const models::Model& model,
                  const std::map<std::string, std::string>& metadata) {
  auto meta = metadata;
  meta.emplace("model", model.name);
  meta.emplace("num_classes", std::to_string(model.num_classes()));
  safetensors::save(path, model_state(model), meta);
}

void save_checkpoint(const std::string& dir, const std::string& name, const models::Model& model,
                     const optim::Optimizer* optimizer, nlohmann::json state) {
  const std::string step = std::to_string(state.at("step").get<int64_t>());
  if (optimizer) {
    safetensors::save(dir + "/" + name + ".optim.safetensors", optimizer->state_tensors(), {{"step", step}});
    state["optimizer"] = optimizer->state_json();
  }
  save_weights(dir + "/" + name + ".safetensors", model, {{"step", step}});
  write_file_atomic(dir + "/" + name + ".state.json", state.dump(1) + "\n");
}

nlohmann::json load_checkpoint(const std::string& dir, const std::string& name, models::Model& model,
                               optim::Optimizer* optimizer) {
  const std::string state_path = dir + "/" + name + ".state.json";
  nlohmann::json state = read_json(state_path);
  TETHER_CHECK(state.contains("step"), "'", state_path, "' has no step: not a tether checkpoint");
  const std::string step = std::to_string(state["step"].get<int64_t>());
  auto check_step = [&](const safetensors::File& f, const std::string& path) {
    auto it = f.metadata.find("step");
    TETHER_CHECK(it != f.metadata.end() && it->second == step, "'", path, "' is from step ",
                 it == f.metadata.end() ? "?" : it->second, " but '", state_path, "' from step ", step,
                 " (the run stopped while writing its checkpoint; the weights file is complete)");
  };
  const std::string weights_path = dir + "/" + name + ".safetensors";
  const safetensors::File weights = safetensors::load(weights_path);
  check_step(weights, weights_path);
  safetensors::File optim_file;
  const std::string optim_path = dir + "/" + name + ".optim.safetensors";
  if (optimizer) {
    optim_file = safetensors::load(optim_path);
    check_step(optim_file, optim_path);
  }
  model.load_state_dict(weights.tensors, /*strict=*/true);
  if (optimizer) optimizer->load_state(optim_file.tensors, state.at("optimizer"));
  return state;
}

}  // namespace tether::train
