// The service's Prometheus counters: requests by endpoint and status, time spent per endpoint,
// and the model queue's batches and rows.
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
  // One model batch of `rows` inputs.
  void model_batch(bool text, int64_t rows);
  // Prometheus text exposition format (version 0.0.4).
  std::string render(int64_t index_images, int64_t index_generation) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, std::pair<double, int64_t>> durations_;  // endpoint -> (sum s, count)
  std::atomic<int64_t> batches_text_{0}, batches_image_{0}, rows_text_{0}, rows_image_{0};
};

}  // namespace clipkit::server
