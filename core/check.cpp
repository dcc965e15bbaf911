#include "core/check.h"

#include <cstring>

namespace tether::detail {

// Strip the absolute prefix so messages read "core/tensor.cpp:42".
static const char* short_path(const char* file) {
  const char* best = nullptr;  // the leftmost project folder in the path
  for (const char* root : {"/core/", "/autograd/", "/layers/", "/models/", "/optim/", "/regularizers/",
                           "/data/", "/tools/", "/tests/"}) {
    const char* p = std::strstr(file, root);
    if (p && (!best || p < best)) best = p;
  }
  return best ? best + 1 : file;
}

void throw_error(const char* condition, const char* file, int line, const std::string& reason) {
  std::ostringstream os;
  if (condition) os << "check failed: " << condition << " at ";
  else os << "error at ";
  os << short_path(file) << ":" << line;
  if (!reason.empty()) os << ": " << reason;
  throw Error(os.str());
}

}  // namespace tether::detail
