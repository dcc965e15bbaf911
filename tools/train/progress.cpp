#include "tools/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace tether::train {

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return buf;
}

Progress::Progress(const std::string& mode, int64_t total_steps, int64_t interval)
    : total_(total_steps), interval_(std::max<int64_t>(interval, 1)) {
  bar_ = mode == "bar" || (mode == "auto" && isatty(STDERR_FILENO));
  quiet_ = mode == "none";
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t step, int64_t epoch, double loss, double lr, int64_t images, const std::string& extra) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) first_step_ = step - 1;  // the clock started at construction (resume: mid-run)
  images_ += images;
  if (bar_ && step != total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  if (!bar_ && step != total_ && step % interval_ != 0) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = images_ / elapsed;
  const double eta = (total_ - step) * elapsed / std::max<int64_t>(step - first_step_, 1);
  char text[256];
  if (bar_) {
    const int width = 24, filled = static_cast<int>(width * step / std::max<int64_t>(total_, 1));
    std::string bar(filled, '#');
    bar += std::string(width - filled, '-');
    std::snprintf(text, sizeof text, "\repoch %lld [%s] %lld/%lld | %.1f img/s | ETA %d:%02d | loss %.4f | lr %.3g ",
                  static_cast<long long>(epoch), bar.c_str(), static_cast<long long>(step),
                  static_cast<long long>(total_), rate, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60, loss, lr);
    std::cerr << text << extra << std::flush;
    bar_drawn_ = true;
  } else {
    std::snprintf(text, sizeof text, "epoch %lld step %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %d:%02d",
                  static_cast<long long>(epoch), static_cast<long long>(step), static_cast<long long>(total_), loss, lr,
                  rate, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    std::cerr << "[" << timestamp() << "] " << text << (extra.empty() ? "" : "  " + extra) << "\n";
  }
}

void Progress::message(const std::string& text) {
  if (quiet_) return;
  if (bar_drawn_) std::cerr << "\n", bar_drawn_ = false;
  std::cerr << "[" << timestamp() << "] " << text << "\n";
}

void Progress::finish() {
  if (bar_drawn_) std::cerr << "\n", bar_drawn_ = false;
}

}  // namespace tether::train
