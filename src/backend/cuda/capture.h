// The host-side bookkeeping of CudaBackend::capture (CUDA graphs), kept apart from the device so
// that it is tested without a GPU.
//   HostRanges: the page-locked buffers handed out by Backend::host_buffer. An input copied from one
//     is "live": the graph's copy node reads that address again on every replay.
//   CaptureLog: what a recorded pass read from the host (inputs: live, or "frozen" -- a snapshot of
//     bytes from elsewhere, e.g. a pass's index arrays, which the graph copies from the snapshot) and
//     wrote back to it (downloads, into page-locked copies owned here). A replay runs the pass's
//     function again with every device op skipped and checks its host traffic against the log,
//     in order: the same live buffer, the same device addresses, the same sizes, and frozen inputs
//     with the same bytes. Any difference throws ReplayMismatch (the pass then runs directly).
// Device addresses stay valid because a graph is only replayed while device_memory_generation()
// (every cudaMalloc/cudaFree, memory.h) and the backend's weight generation are what they were at
// the end of the capture: the arenas then still hold the blocks the graph's kernels address.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace clipkit::cuda {

class HostRanges {
 public:
  void add(const void* p, size_t bytes);
  void remove(const void* p);
  bool contains(const void* p, size_t bytes) const;  // [p, p + bytes) inside one range

 private:
  mutable std::mutex mu_;
  std::map<uintptr_t, size_t> ranges_;
};

struct ReplayMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class CaptureLog {
 public:
  // Where snapshots and download copies live: page-locked memory on the device (tests plug in malloc).
  struct Allocator {
    void* (*alloc)(size_t bytes) = nullptr;
    void (*free)(void* p) = nullptr;
  };
  explicit CaptureLog(Allocator a);
  ~CaptureLog();
  CaptureLog(const CaptureLog&) = delete;
  CaptureLog& operator=(const CaptureLog&) = delete;

  // Recording. The host address the recorded host -> device copy reads: `host` itself when live,
  // else a snapshot of its bytes taken now.
  const void* record_input(const void* host, const void* dst, size_t bytes, bool live);
  // The host address the recorded device -> host copy writes (owned here).
  void* record_download(const void* src, size_t bytes);

  // Replay: the pass's host traffic, in recorded order.
  void begin_replay();
  void check_input(const void* host, const void* dst, size_t bytes) const;  // throws ReplayMismatch
  const void* check_download(const void* src, size_t bytes) const;          // the copy to read; throws
  void advance_input() { ++in_; }
  void advance_download() { ++out_; }
  void end_replay() const;  // throws ReplayMismatch when the pass did less than it recorded
  size_t inputs() const { return ins_.size(); }
  size_t downloads() const { return outs_.size(); }

 private:
  struct In {
    const void* host;
    const void* dst;
    size_t bytes;
    void* snapshot;  // null: live
  };
  struct Out {
    const void* src;
    size_t bytes;
    void* copy;
  };
  void* own(size_t bytes);
  Allocator a_;
  std::vector<void*> owned_;
  std::vector<In> ins_;
  std::vector<Out> outs_;
  size_t in_ = 0, out_ = 0;
};

}  // namespace clipkit::cuda
