// `clipkit data shapes`: added to the `data` command by cmd_data.cpp.
#pragma once
#include "command.h"

namespace clipkit::cli {

struct Subcommand {
  CLI::App* app = nullptr;  // run `run` when app->parsed()
  RunFn run;
};
Subcommand add_data_shapes(CLI::App& data);

}  // namespace clipkit::cli
