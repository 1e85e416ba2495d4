// Shared by the fuzz targets: a private scratch folder for parsers that read files, and the
// replay driver's contract. Each target defines LLVMFuzzerTestOneInput; a target may also define
// LLVMFuzzerInitialize (both libFuzzer and fuzz/replay_main.cpp call it first).
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace clipkit::fuzz {

// A folder of this process's own (in /dev/shm when there is one, so writes stay in memory).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    auto d = base / ("clipkit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string p = scratch_dir() + "/" + name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// Keeps a value the compiler would otherwise drop (reading a byte proves the memory is there).
inline void keep(uint8_t v) { asm volatile("" : : "r"(v)); }

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace clipkit::fuzz
