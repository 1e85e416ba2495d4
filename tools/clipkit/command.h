// Subcommands register themselves: each cmd_*.cpp holds one static CommandRegistrar whose setup
// function adds its options to the CLI11 subcommand and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "model/clip_model.h"

namespace clipkit::cli {

// Exit codes shared by all commands.
enum ExitCode : int {
  kOk = 0,
  kError = 1,          // the command failed (message on stderr)
  kUsage = 2,          // bad flags
  kSkippedInputs = 3,  // finished, but some inputs were unreadable and skipped (listed on stderr)
};

using RunFn = std::function<int()>;
using SetupFn = std::function<RunFn(CLI::App&)>;

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* description, SetupFn setup);
};

struct RegisteredCommand {
  std::string name, description;
  SetupFn setup;
};
std::vector<RegisteredCommand>& registry();

// Options every compute command takes: --threads, --batch-size, --precision, --device.
struct ComputeOptions {
  int threads = 0;  // 0 = all cores
  int batch_size = 32;
  std::string precision = "fp32";
  std::string device = "cpu";
};
void add_compute_options(CLI::App& app, ComputeOptions& o);
void add_device_option(CLI::App& app, std::string& device);
void apply_compute_options(const ComputeOptions& o);  // sets the thread count
model::LoadOptions load_options(const ComputeOptions& o);  // precision and device of the model

}  // namespace clipkit::cli
