// clipkit: one binary, one subcommand per file (cmd_*.cpp), thin over the library.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "command.h"
#include "core/error.h"

namespace clipkit::cli {

std::vector<RegisteredCommand>& registry() {
  static std::vector<RegisteredCommand> r;
  return r;
}

CommandRegistrar::CommandRegistrar(const char* name, const char* description, SetupFn setup) {
  registry().push_back({name, description, std::move(setup)});
}

// The deepest subcommand being parsed, for messages ("clipkit index build: error: ...").
std::string command_path(const CLI::App& app) {
  std::string p = "clipkit";
  const CLI::App* a = &app;
  while (true) {
    const CLI::App* next = nullptr;
    for (const CLI::App* s : a->get_subcommands())
      if (s->parsed()) next = s;
    if (!next) return p;
    p += " " + next->get_name();
    a = next;
  }
}

// `clipkit --version`: the version, then each device built in and what it runs on (or why it is
// not usable here), with the precisions it runs emulated (Backend::precision_note).
std::string version_text() {
  std::string s = "clipkit " CLIPKIT_VERSION;
  for (const auto& d : backend::built_devices()) {
    s += "\n" + d + ": ";
    try {
      backend::Backend& be = backend::backend_for(d);
      s += be.description();
      for (auto p : {backend::Precision::BF16, backend::Precision::INT8})
        if (const std::string note = be.precision_note(p); !note.empty())
          s += fmt::format("\n  {}: {}", backend::precision_name(p), note);
    } catch (const std::exception& e) {
      std::string why = e.what();
      if (const std::string flag = "--device " + d + ": "; why.rfind(flag, 0) == 0) why.erase(0, flag.size());
      s += "built, not usable here: " + why;
    }
  }
  return s;
}

}  // namespace clipkit::cli

int main(int argc, char** argv) {
  using namespace clipkit::cli;
  CLI::App app{"clipkit: CLIP models in one C++ binary -- load HF checkpoints, embed, train, search"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();  // every default shown in --help
  // One line per usage error: "clipkit search: error: ... (clipkit search --help lists the flags)".
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    const std::string cmd = command_path(*a);
    return cmd + ": error: " + e.what() + " (" + cmd + " --help lists the flags)\n";
  });
  app.set_version_flag("--version", clipkit::cli::version_text);
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
    run_checks(app);
    for (auto& [sub, run] : runs)
      if (sub->parsed()) {
        command = sub->get_name().c_str();
        return run();
      }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", command_path(app).c_str(), e.what());
    return kUsage;
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
