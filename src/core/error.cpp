#include "core/error.h"

namespace clipkit {

void assert_failed(const char* expr, const char* file, int line) {
  throw std::logic_error(fmt::format("internal error: assertion `{}` failed at {}:{}", expr, file, line));
}

}  // namespace clipkit
