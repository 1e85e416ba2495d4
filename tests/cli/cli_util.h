// Running the clipkit binary from tests.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace clipkit::test {

struct RunResult {
  int status = -1;
  std::string out;  // stdout (stderr goes to err)
  std::string err;
};

// Runs `clipkit ARGS` through the shell; ARGS must be shell-quoted by the caller.
inline RunResult run_clipkit(const std::string& args) {
  static int n = 0;
  auto errf = std::filesystem::temp_directory_path() / ("clipkit_cli_err_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::string cmd = std::string(CLIPKIT_BINARY) + " " + args + " 2>" + errf.string();
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t k;
  while ((k = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), k);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (FILE* f = fopen(errf.c_str(), "r")) {
    while ((k = fread(buf.data(), 1, buf.size(), f)) > 0) r.err.append(buf.data(), k);
    fclose(f);
  }
  std::filesystem::remove(errf);
  return r;
}

inline std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("clipkit_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

}  // namespace clipkit::test
