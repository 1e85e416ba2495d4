#include "dist/rendezvous.h"

#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit::dist {
namespace {

constexpr std::string_view kMagic = "clipkit-rendezvous-1\n";
[[maybe_unused]] const std::filesystem::file_time_type kStart = process_start();  // taken at start-up

}  // namespace

std::filesystem::file_time_type process_start() {
  static const auto t = std::filesystem::file_time_type::clock::now();
  return t;
}

std::string rendezvous_exchange(const Rendezvous& r, int rank, const std::string& payload, size_t bytes) {
  namespace fs = std::filesystem;
  const std::string path = r.path();
  if (rank == 0) {
    if (payload.size() != bytes) fail("rendezvous {}: payload of {} bytes, expected {}", path, payload.size(), bytes);
    std::error_code ec;
    fs::create_directories(r.dir, ec);
    if (ec) fail("rendezvous: cannot create the folder {} ({})", r.dir, ec.message());
    write_file_atomic(path, std::string(kMagic) + std::to_string(bytes) + "\n" + payload);
    return payload;
  }
  const auto start = std::chrono::steady_clock::now();
  auto waited = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::error_code ec;
  auto fresh = [&] {
    const auto t = fs::last_write_time(path, ec);
    return !ec && t >= r.not_before;
  };
  while (!fresh()) {
    if (waited() > r.timeout_s)
      fail("rendezvous: rank {} waited {:.0f} s for {}, which rank 0 writes: rank 0 did not start or failed, or "
           "the folder {} is not the same folder on every node (set CLIPKIT_NCCL_DIR to a shared folder){}",
           rank, r.timeout_s, path, r.dir, fs::exists(path, ec) ? "; the file there is older than this run" : "");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string text = read_file(path);  // renamed into place whole: never half-written
  const std::string head = std::string(kMagic) + std::to_string(bytes) + "\n";
  if (text.compare(0, head.size(), head) != 0 || text.size() != head.size() + bytes)
    fail("rendezvous {}: not a clipkit rendezvous file of {} bytes (another program's file, or another clipkit "
         "version's: remove it)", path, bytes);
  return text.substr(head.size());
}

void remove_rendezvous(const Rendezvous& r) {
  std::error_code ec;
  std::filesystem::remove(r.path(), ec);  // best effort: a stale file is replaced by the next run's rank 0
}

}  // namespace clipkit::dist
