// Subcommands register themselves: each cmd_*.cpp holds one static CommandRegistrar whose setup
// function adds its options to the CLI11 subcommand and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "flags.h"

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

}  // namespace clipkit::cli
