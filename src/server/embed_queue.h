// The service's one way to the model: request threads hand texts or preprocessed images to a
// queue, and one model thread takes every waiting request of the same kind (up to max_batch rows)
// as one model batch, so concurrent requests share forward passes. Batches form adaptively: an
// idle model thread starts on a lone request at once (no fixed wait for company); whatever
// arrives while a batch runs is taken together by the next one, and right after a busy batch the
// thread gives its requests' senders a moment (at most a quarter of that batch's time) to send
// again, rather than start a batch of one -- or, under a steady load of many clients, keep two
// halves of them alternating in half-size batches. At most max_queue inputs wait: a request that would
// make more is refused at once with ApiError 503 + Retry-After, so latency stays bounded instead
// of growing with the load. Texts are looked up in an LRU cache of recent text embeddings
// (text_cache.h) first; only the misses go to the model. Uploaded images are decoded on the
// request threads, at most max_decodes at a time and each within max_pixels, so that no number of
// concurrent requests can make decoding take more than about max_decodes x max_pixels x 3 bytes.
#pragma once
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "apps/encoder.h"
#include "image/image.h"
#include "pipeline/embedder.h"
#include "server/metrics.h"
#include "server/text_cache.h"

namespace clipkit::server {

class EmbedQueue {
 public:
  struct Limits {
    int max_batch = 64;      // rows per model batch
    int model_threads = 0;   // OpenMP threads of the model thread (0 = all cores)
    int64_t max_pixels = 0;  // per decoded upload (0 = the decoder's default)
    int max_decodes = 2;     // uploads decoded at once
    int max_queue = 256;     // inputs waiting for the model; a request over it gets 503
    int text_cache = 4096;   // text embeddings kept (least recently used out first); 0 = none
  };
  EmbedQueue(const pipeline::Embedder& emb, const Limits& l, Metrics& metrics);
  ~EmbedQueue();  // finishes the queued jobs, then joins the model thread

  const pipeline::Embedder& embedder() const { return emb_; }
  // [n, D], L2-normalized. Throw ApiError 400 when the model lacks the tower, 503 (with
  // retry_after_s) when the queue is full.
  Tensor embed_texts(const std::vector<std::string>& texts);
  // Preprocessed here (on the calling thread), embedded through the queue as one job.
  Tensor embed_images(const std::vector<const image::Image*>& images);
  // Decoded (within the limits) and preprocessed here; an unreadable image is ApiError 400.
  Tensor embed_image_bytes(const std::string& bytes, const std::string& name);
  // The applications' view of the model: every call goes through this queue.
  const apps::Encoder& encoder() const { return *encoder_; }

 private:
  struct Job {
    bool text = false;
    std::vector<std::string> texts;
    std::vector<float> px;  // n * per
    int64_t n = 0;
    std::promise<Tensor> done;
  };
  void model_loop();
  Tensor embed_text_bucketed(const std::vector<std::string>& texts);
  Tensor run(std::shared_ptr<Job> j);

  const pipeline::Embedder& emb_;
  const Limits l_;
  Metrics& metrics_;
  std::counting_semaphore<> decodes_;
  std::unique_ptr<apps::Encoder> encoder_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int64_t queued_rows_ = 0;
  bool quit_ = false;
  TextCache cache_;
  std::thread thread_;
};

}  // namespace clipkit::server
