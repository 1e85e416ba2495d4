// The service's Prometheus counters: requests by endpoint and status, time spent per endpoint,
// the model queue's batches (with a histogram of their sizes), rows, depth and rejections, and the
// text cache's hits and misses.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace clipkit::server {

class Metrics {
 public:
  // One handled request.
  void request(const std::string& endpoint, int status, double seconds);
  // A request answered by the HTTP library itself (no route, body too large, bad request line).
  void other(int status);
  // One model batch of `rows` inputs that took `seconds`.
  void model_batch(bool text, int64_t rows, double seconds);
  // Inputs waiting for the model now.
  void queue_depth(int64_t rows) { queue_depth_ = rows; }
  // A request refused because the queue was full (503).
  void queue_rejected() { rejections_++; }
  // Texts answered from the cache / embedded by the model; the cache's size now.
  void text_cache(int64_t hits, int64_t misses, int64_t entries) {
    cache_hits_ += hits;
    cache_misses_ += misses;
    cache_entries_ = entries;
  }
  // Prometheus text exposition format (version 0.0.4).
  std::string render(int64_t index_images, int64_t index_generation) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, std::pair<double, int64_t>> durations_;  // endpoint -> (sum s, count)
  std::atomic<int64_t> batches_text_{0}, batches_image_{0}, rows_text_{0}, rows_image_{0};
  static constexpr int kBuckets = 9;  // batch sizes <= 1, 2, 4, ..., 256
  std::atomic<int64_t> batch_le_[2][kBuckets + 1];  // [image, text][bucket or +Inf] (zero: C++20 atomics)
  std::atomic<double> busy_s_{0};
  std::atomic<int64_t> queue_depth_{0}, rejections_{0}, cache_hits_{0}, cache_misses_{0}, cache_entries_{0};
};

}  // namespace clipkit::server
