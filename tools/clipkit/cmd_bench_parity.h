// `clipkit bench parity` (cmd_bench_parity.cpp): embeddings or one step's gradients of given inputs,
// for comparison with Hugging Face's (bench/gpu/clipkit_side.py).
#pragma once
#include "command.h"

namespace clipkit::cli {

RunFn setup_bench_parity(CLI::App& app);

}  // namespace clipkit::cli
