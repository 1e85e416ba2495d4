#include "server/metrics.h"

#include <fmt/format.h>

namespace clipkit::server {

void Metrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  requests_[{endpoint, status}]++;
  auto& d = durations_[endpoint];
  d.first += seconds;
  d.second++;
}

void Metrics::other(int status) {
  std::lock_guard<std::mutex> l(mu_);
  requests_[{"other", status}]++;
}

void Metrics::model_batch(bool text, int64_t rows) {
  (text ? batches_text_ : batches_image_)++;
  (text ? rows_text_ : rows_image_) += rows;
}

std::string Metrics::render(int64_t index_images, int64_t index_generation) const {
  std::string s;
  s += "# HELP clipkit_http_requests_total HTTP requests by endpoint and status code.\n";
  s += "# TYPE clipkit_http_requests_total counter\n";
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [k, n] : requests_)
    s += fmt::format("clipkit_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, n);
  s += "# HELP clipkit_http_request_duration_seconds Time spent handling requests.\n";
  s += "# TYPE clipkit_http_request_duration_seconds summary\n";
  for (auto& [k, v] : durations_) {
    s += fmt::format("clipkit_http_request_duration_seconds_sum{{endpoint=\"{}\"}} {:.6f}\n", k, v.first);
    s += fmt::format("clipkit_http_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n", k, v.second);
  }
  s += "# HELP clipkit_model_batches_total Model batches run, by input kind.\n";
  s += "# TYPE clipkit_model_batches_total counter\n";
  s += fmt::format("clipkit_model_batches_total{{kind=\"text\"}} {}\n", batches_text_.load());
  s += fmt::format("clipkit_model_batches_total{{kind=\"image\"}} {}\n", batches_image_.load());
  s += "# HELP clipkit_model_rows_total Inputs embedded, by kind (rows / batches = mean batch size).\n";
  s += "# TYPE clipkit_model_rows_total counter\n";
  s += fmt::format("clipkit_model_rows_total{{kind=\"text\"}} {}\n", rows_text_.load());
  s += fmt::format("clipkit_model_rows_total{{kind=\"image\"}} {}\n", rows_image_.load());
  s += "# HELP clipkit_index_images Images in the index.\n# TYPE clipkit_index_images gauge\n";
  s += fmt::format("clipkit_index_images {}\n", index_images);
  s += "# HELP clipkit_index_generation The index generation being served.\n# TYPE clipkit_index_generation gauge\n";
  s += fmt::format("clipkit_index_generation {}\n", index_generation);
  return s;
}

}  // namespace clipkit::server
