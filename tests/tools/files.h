// Test helpers for files and processes: a temporary folder removed with its contents, raw
// byte I/O (to damage files on purpose), and running a command to get its exit code and output.
#pragma once
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/check.h"

namespace tether::testing {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/tether-test-XXXXXX";
    TETHER_CHECK(mkdtemp(pattern) != nullptr, "cannot create a temporary folder");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& str() const { return path_; }
  // path/`name`, creating its parent folders.
  std::string file(const std::string& name) const {
    const std::filesystem::path p = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(p.parent_path());
    return p.string();
  }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TETHER_CHECK(in.good(), "cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  TETHER_CHECK(out.good(), "cannot write '", path, "'");
}

struct RunResult {
  int code = -1;       // exit status (-1: killed by a signal)
  std::string output;  // stdout and stderr together
};

// Runs `command` through the shell.
inline RunResult run_command(const std::string& command) {
  RunResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  TETHER_CHECK(pipe != nullptr, "cannot run: ", command);
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.output.append(buffer, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace tether::testing
