// clipkit: one binary, one subcommand per file (cmd_*.cpp), thin over the library.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::cli {

std::vector<RegisteredCommand>& registry() {
  static std::vector<RegisteredCommand> r;
  return r;
}

CommandRegistrar::CommandRegistrar(const char* name, const char* description, SetupFn setup) {
  registry().push_back({name, description, std::move(setup)});
}

void add_compute_options(CLI::App& app, ComputeOptions& o) {
  app.add_option("--threads", o.threads, "compute threads (0 = all cores)");
  app.add_option("--batch-size", o.batch_size, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--precision", o.precision, "matmul precision")->check(CLI::IsMember({"fp32", "bf16"}));
  add_device_option(app, o.device);
}

void add_device_option(CLI::App& app, std::string& device) {
  std::string built;
  const std::vector<std::string> devices = backend::built_devices();
  for (auto& d : devices) built += (built.empty() ? "" : ", ") + d;
  // the default ("cpu") when it is built, else the first device built (cuda in the standalone GPU build)
  if (!devices.empty() && std::find(devices.begin(), devices.end(), device) == devices.end()) device = devices.front();
  app.add_option("--device", device, "compute device (built: " + built + ")")->capture_default_str();
}

void apply_compute_options(const ComputeOptions& o) { set_num_threads(o.threads); }

model::LoadOptions load_options(const ComputeOptions& o) {
  model::LoadOptions l;
  l.precision = backend::precision_from_name(o.precision);
  l.device = o.device;
  return l;
}

}  // namespace clipkit::cli

int main(int argc, char** argv) {
  using namespace clipkit::cli;
  CLI::App app{"clipkit: CLIP models in one C++ binary -- load HF checkpoints, embed, train, search"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "clipkit 0.1.0");
  auto& cmds = registry();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, RunFn>> runs;
  for (auto& c : cmds) {
    CLI::App* sub = app.add_subcommand(c.name, c.description);
    runs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  const char* command = "";
  try {
    for (auto& [sub, run] : runs)
      if (sub->parsed()) {
        command = sub->get_name().c_str();
        return run();
      }
  } catch (const clipkit::Error& e) {
    std::fprintf(stderr, "clipkit: error: %s\n", e.what());
    return kError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "clipkit: error: %s: out of memory (an input asks for more memory than this machine has)\n",
                 command);
    return kError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clipkit: error: %s: %s\n", command, e.what());
    return kError;
  }
  return kError;
}
