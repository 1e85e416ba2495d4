// The library the service answers from. `clipkit index add/remove` (and `build --overwrite`) write a
// new generation and switch index.json to it; a watcher thread checks index.json every
// interval_s and, when it names a newer generation of the same model, opens it and swaps it in.
// Requests take a snapshot (current()) when they start, so each request sees one whole generation
// and an old one is released when its last request ends.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "index/library.h"

namespace clipkit::server {

class LibraryHandle {
 public:
  // interval_s <= 0: no watcher (refresh() still works).
  LibraryHandle(std::shared_ptr<const index::Library> lib, double interval_s);
  ~LibraryHandle();
  LibraryHandle(const LibraryHandle&) = delete;
  LibraryHandle& operator=(const LibraryHandle&) = delete;

  std::shared_ptr<const index::Library> current() const;
  // Checks index.json now; true when a new generation was swapped in. A generation that cannot be
  // opened, or was made with another model, is reported on stderr (once) and the old one kept.
  bool refresh();

 private:
  const std::string dir_;
  std::mutex refresh_mu_;  // one refresh at a time
  mutable std::mutex mu_;  // guards lib_
  std::shared_ptr<const index::Library> lib_;
  int64_t refused_ = -1;  // the last generation refused (reported once)
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread watcher_;
};

}  // namespace clipkit::server
