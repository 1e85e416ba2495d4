// Errors: library code throws clipkit::Error for user-facing problems (bad file, bad flag);
// CLIPKIT_ASSERT is for internal invariants only (bugs), never for input validation.
#pragma once
#include <fmt/format.h>

#include <string>

#include "clipkit/error.h"  // clipkit::Error, part of the public API (include/clipkit/)

namespace clipkit {

// fail("{}: bad header", path) -- throws Error with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

}  // namespace clipkit

#define CLIPKIT_ASSERT(x) \
  do { if (!(x)) ::clipkit::assert_failed(#x, __FILE__, __LINE__); } while (0)
