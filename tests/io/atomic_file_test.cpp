// Atomic writes, and the temp files killed writers leave behind (issue 14: nobody removed them).
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;

TEST(AtomicFile, LeftoversOfDeadWritersAreRemovedByTheNextWriter) {
  const fs::path dir = fs::temp_directory_path() / ("clipkit_atomic_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // pid 2^22 + 12345 is above Linux's default pid_max (4194304): no such process
  const std::string dead = std::to_string((1 << 22) + 12345);
  write_file_atomic((dir / "x.json.tmp.").string() + dead, "half");
  fs::create_directories(dir / ("checkpoint-3.tmp." + dead));
  write_file_atomic((dir / "y.json.tmp.1").string(), "init's");  // pid 1 runs: kept
  write_file_atomic((dir / "notes.tmp.txt").string(), "not a temp file");
  // the writes above swept the folder already (nothing to remove then): sweep again explicitly
  EXPECT_EQ(remove_stale_temp_files(dir.string()), 2);
  EXPECT_FALSE(fs::exists(dir / ("x.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(dir / ("checkpoint-3.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir / "y.json.tmp.1"));
  EXPECT_TRUE(fs::exists(dir / "notes.tmp.txt"));
  // and the first atomic write of a process into a folder does it by itself
  const fs::path other = dir / "sub";
  fs::create_directories(other);
  { std::FILE* f = std::fopen((other / ("a.npy.tmp." + dead)).c_str(), "w"); std::fclose(f); }
  write_file_atomic((other / "a.npy").string(), "done");
  EXPECT_FALSE(fs::exists(other / ("a.npy.tmp." + dead)));
  EXPECT_EQ(read_file((other / "a.npy").string()), "done");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
