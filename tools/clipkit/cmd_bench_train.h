// `clipkit bench train` (cmd_bench_train.cpp): full fine-tuning steps per second on one device.
#pragma once
#include "command.h"

namespace clipkit::cli {

RunFn setup_bench_train(CLI::App& app);

}  // namespace clipkit::cli
