// Errors and the CHECK macros. Every failure in tether throws tether::Error carrying
// the failed condition, file:line and a readable reason; nothing in the library calls exit().
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace tether {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// Streams every argument into one string: make_message("got ", 3, " dims").
template <typename... Args>
std::string make_message(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* condition, const char* file, int line, const std::string& reason);
}  // namespace detail
}  // namespace tether

// TETHER_CHECK(cond, "reason ", value, ...): throws tether::Error
//   "check failed: <cond> at core/tensor.cpp:42: <reason>" when cond is false.
#define TETHER_CHECK(cond, ...)                                                               \
  do {                                                                                        \
    if (!(cond)) [[unlikely]]                                                                 \
      ::tether::detail::throw_error(#cond, __FILE__, __LINE__,                                \
                                    ::tether::detail::make_message(__VA_ARGS__));              \
  } while (0)

// TETHER_FAIL("reason ", value): throws unconditionally (unsupported case, bad input).
#define TETHER_FAIL(...) \
  ::tether::detail::throw_error(nullptr, __FILE__, __LINE__, ::tether::detail::make_message(__VA_ARGS__))
