// Small batches through captured passes (Backend::capture; CUDA graphs on the GPU), for the
// embedder's batch-1 latency. Per key (the tower and every shape of the pass): the first run is
// direct (the arenas grow to their size and the bf16 weights are made), the second is recorded,
// and later runs replay the recording. A replay that does not fit (CapturedPass::run() false: the
// device memory moved, an input changed place) drops the recording and the key is recorded again
// on its next run; after kMaxFailures failed recordings or replays a key runs directly for good.
// Batches above max_batch always run directly. The CPU's capture runs passes directly, so the CPU
// computes exactly what it computes without this.
//
// A pass function is kept for replays: it must only refer to state that outlives this cache
// (staging buffers from Backend::host_buffer, where the caller puts each run's inputs, and the
// slot its results go to), never to the caller's locals.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace clipkit::pipeline {

class PassCache {
 public:
  using Capture = std::function<std::unique_ptr<backend::CapturedPass>(std::function<void()>)>;
  static constexpr int64_t kDefaultMaxBatch = 16;
  static constexpr int kMaxFailures = 2;

  explicit PassCache(backend::Backend& be, int64_t max_batch = kDefaultMaxBatch);
  PassCache(Capture capture, int64_t max_batch);

  bool takes(int64_t batch) const { return batch >= 1 && batch <= max_batch_; }
  // Runs `pass` once (directly, recording or replaying); not thread-safe (the caller locks).
  void run(const std::string& key, int64_t batch, std::function<void()> pass);

  struct Stats {
    int64_t direct = 0, recorded = 0, replayed = 0, dropped = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    int runs = 0, failures = 0;
    std::unique_ptr<backend::CapturedPass> pass;
  };
  Capture capture_;
  int64_t max_batch_;
  std::map<std::string, Entry> entries_;
  Stats stats_;
};

}  // namespace clipkit::pipeline
