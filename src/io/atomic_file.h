// Atomic writes: data goes to "<path>.tmp.<pid>", is flushed and fsync'ed, then renamed over
// <path>. A crash leaves either the old file or the new one, never a half-written file; the temp
// file a killed process leaves is removed by the next process writing into that folder.
#pragma once
#include <string>
#include <string_view>

namespace clipkit {

void write_file_atomic(const std::string& path, std::string_view data);
std::string read_file(const std::string& path);  // whole file; throws Error naming the path

// Removes "*.tmp.<pid>" files and folders in dir whose process no longer runs; returns how many.
// AtomicFile calls it once per folder per process.
int remove_stale_temp_files(const std::string& dir);

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // not committed -> temp file removed
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();  // fsync + rename
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

}  // namespace clipkit
