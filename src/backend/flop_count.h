// The matmul FLOP count (core/flop_count.h), which the backends' ops add to.
#pragma once
#include "core/flop_count.h"

namespace clipkit::backend {

using clipkit::count_flops;
using clipkit::flops_counted;
using clipkit::reset_flop_count;

}  // namespace clipkit::backend
