// clipkit::Error: what every clipkit function throws on bad input (a missing or malformed file,
// model, index or request field). The message names the file or field and the problem.
#pragma once
#include <stdexcept>
#include <string>

#if defined(__GNUC__)
#define CLIPKIT_API __attribute__((visibility("default")))
#else
#define CLIPKIT_API
#endif

namespace clipkit {

class CLIPKIT_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace clipkit
