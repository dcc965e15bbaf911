// The run directory of SPEC 9: args.json, metrics.csv, log.jsonl, checkpoints. Every file that
// is rewritten goes through a temporary file and a rename, so a crash or Ctrl-C never leaves a
// half-written file; the append-only logs are flushed line by line.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "optim/optimizer.h"

namespace tether::train {

// Writes `text` to `path` atomically (temporary file in the same folder, then rename).
void write_file_atomic(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);
nlohmann::json read_json(const std::string& path);  // Error naming the file on bad JSON

// Appends one line per record, flushed. On resume, records of steps after the checkpoint
// (written by the interrupted run after its last checkpoint) are dropped first, so the file
// reads as if the run had never stopped.
class LineLog {
 public:
  LineLog() = default;
  // `step_of` extracts a record's step from a line (-1: keep, e.g. the CSV header).
  void open(const std::string& path, bool resume, int64_t keep_up_to_step,
            int64_t (*step_of)(const std::string& line));
  void write(const std::string& line);
  bool is_open() const { return out_.is_open(); }
  bool empty() const { return lines_ == 0; }

 private:
  std::ofstream out_;
  int64_t lines_ = 0;
};
int64_t jsonl_step(const std::string& line);  // {"step": N, ...}
int64_t csv_step(const std::string& line);    // first column; -1 for the header

// A checkpoint: <dir>/<name>.safetensors (the model's state dict: loadable by --weights/--init),
// <dir>/<name>.optim.safetensors (optimizer buffers) and <dir>/<name>.state.json (step, epoch,
// optimizer scalars, RNG and trainer state). The state file is written last and names the step
// the two others must carry, so a mismatched set is detected on load.
void save_checkpoint(const std::string& dir, const std::string& name, const models::Model& model,
                     const optim::Optimizer* optimizer, nlohmann::json state);
// Loads weights (strict) and optimizer state; returns the state JSON. Errors name the file.
nlohmann::json load_checkpoint(const std::string& dir, const std::string& name, models::Model& model,
                               optim::Optimizer* optimizer);
// Just the weights, as safetensors with metadata (--save-final, best).
void save_weights(const std::string& path, const models::Model& model,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace tether::train
