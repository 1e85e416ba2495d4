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

void Metrics::model_batch(bool text, int64_t rows, double seconds) {
  double cur = busy_s_.load();
  while (!busy_s_.compare_exchange_weak(cur, cur + seconds)) {
  }
  (text ? batches_text_ : batches_image_)++;
  (text ? rows_text_ : rows_image_) += rows;
  int b = 0;
  while (b < kBuckets && rows > (int64_t{1} << b)) ++b;
  batch_le_[text][b]++;
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
  s += "# HELP clipkit_model_batch_size Inputs per model batch, by input kind.\n";
  s += "# TYPE clipkit_model_batch_size histogram\n";
  for (int text = 1; text >= 0; --text) {
    const char* kind = text ? "text" : "image";
    int64_t cum = 0;
    for (int b = 0; b <= kBuckets; ++b) {
      cum += batch_le_[text][b].load();
      s += fmt::format("clipkit_model_batch_size_bucket{{kind=\"{}\",le=\"{}\"}} {}\n", kind,
                       b < kBuckets ? std::to_string(int64_t{1} << b) : "+Inf", cum);
    }
    s += fmt::format("clipkit_model_batch_size_sum{{kind=\"{}\"}} {}\n", kind, (text ? rows_text_ : rows_image_).load());
    s += fmt::format("clipkit_model_batch_size_count{{kind=\"{}\"}} {}\n", kind, cum);
  }
  s += "# HELP clipkit_model_busy_seconds_total Time the model spent running batches (its utilization).\n";
  s += "# TYPE clipkit_model_busy_seconds_total counter\n";
  s += fmt::format("clipkit_model_busy_seconds_total {:.6f}\n", busy_s_.load());
  s += "# HELP clipkit_model_queue_depth Inputs waiting for the model.\n# TYPE clipkit_model_queue_depth gauge\n";
  s += fmt::format("clipkit_model_queue_depth {}\n", queue_depth_.load());
  s += "# HELP clipkit_model_queue_rejections_total Requests refused with 503 because the model queue was full.\n";
  s += "# TYPE clipkit_model_queue_rejections_total counter\n";
  s += fmt::format("clipkit_model_queue_rejections_total {}\n", rejections_.load());
  s += "# HELP clipkit_text_cache_hits_total Texts answered from the embedding cache.\n";
  s += "# TYPE clipkit_text_cache_hits_total counter\n";
  s += fmt::format("clipkit_text_cache_hits_total {}\n", cache_hits_.load());
  s += "# HELP clipkit_text_cache_misses_total Texts the model embedded (not in the cache).\n";
  s += "# TYPE clipkit_text_cache_misses_total counter\n";
  s += fmt::format("clipkit_text_cache_misses_total {}\n", cache_misses_.load());
  s += "# HELP clipkit_text_cache_entries Text embeddings in the cache.\n# TYPE clipkit_text_cache_entries gauge\n";
  s += fmt::format("clipkit_text_cache_entries {}\n", cache_entries_.load());
  s += "# HELP clipkit_index_images Images in the index.\n# TYPE clipkit_index_images gauge\n";
  s += fmt::format("clipkit_index_images {}\n", index_images);
  s += "# HELP clipkit_index_generation The index generation being served.\n# TYPE clipkit_index_generation gauge\n";
  s += fmt::format("clipkit_index_generation {}\n", index_generation);
  return s;
}

}  // namespace clipkit::server
