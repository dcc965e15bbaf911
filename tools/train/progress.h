// Training progress on stderr: a live bar on a terminal (epoch, step/total, img/s, ETA, loss,
// lr), timestamped plain lines otherwise (logs, CI), or nothing.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace tether::train {

class Progress {
 public:
  // mode: auto (bar when stderr is a terminal) | bar | plain | none. Plain lines are printed
  // every `interval` steps (and at the last); the bar redraws at most 5 times a second.
  Progress(const std::string& mode, int64_t total_steps, int64_t interval = 1);
  // After step `step` (1-based count of finished steps). `extra`: the method's values for the
  // line (Ω parts, PtR's w, DTNH's angles), appended as given.
  void update(int64_t step, int64_t epoch, double loss, double lr, int64_t images, const std::string& extra = "");
  // A message on its own line (evaluation results, warnings), never torn by the bar.
  void message(const std::string& text);
  void finish();

 private:
  bool bar_ = false, quiet_ = false, bar_drawn_ = false;
  int64_t total_, interval_;
  int64_t images_ = 0, first_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string timestamp();  // "2026-11-22 03:41:07"

}  // namespace tether::train
