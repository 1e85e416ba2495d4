#include "server/embed_queue.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/parallel.h"
#include "image/batch.h"
#include "image/preprocess.h"
#include "server/api_error.h"

namespace clipkit::server {

namespace {

struct QueueEncoder final : apps::Encoder {
  EmbedQueue* q;
  explicit QueueEncoder(EmbedQueue* queue) : q(queue) {}
  int64_t dim() const override { return q->embedder().dim(); }
  float logit_scale() const override { return std::exp(q->embedder().model().logit_scale()); }
  Tensor encode_texts(const std::vector<std::string>& texts) const override {
    if (texts.empty()) return Tensor::zeros(DType::F32, {0, dim()});
    return q->embed_texts(texts);
  }
  Tensor encode_images(const std::vector<const image::Image*>& images) const override {
    return q->embed_images(images);
  }
};

}  // namespace

EmbedQueue::EmbedQueue(const pipeline::Embedder& emb, const Limits& l, Metrics& metrics)
    : emb_(emb),
      l_(l),
      metrics_(metrics),
      decodes_(std::max(1, l.max_decodes)),
      cache_(static_cast<size_t>(std::max(0, l.text_cache))) {
  encoder_ = std::make_unique<QueueEncoder>(this);
  thread_ = std::thread([this] { model_loop(); });
}

EmbedQueue::~EmbedQueue() {
  {
    std::lock_guard<std::mutex> l(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EmbedQueue::model_loop() {
  using Clock = std::chrono::steady_clock;
  set_num_threads(l_.model_threads);
  auto waiting = [this] {
    std::lock_guard<std::mutex> l(mu_);
    return queue_.size();
  };
  // the previous batch: its requests, the requests already waiting when it ended (before its own
  // senders were answered), when it ended, how long it took
  size_t last_jobs = 0, waiting_at_end = 0;
  Clock::time_point last_end;
  Clock::duration last_took{};
  while (true) {
    std::vector<std::shared_ptr<Job>> batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return quit_ || !queue_.empty(); });
      if (quit_ && queue_.empty()) return;
      // Busy: a batch of several requests ended a moment ago, and their senders send again within
      // moments (each has only just been answered). Rather than start without them -- a batch of
      // one or two, or, under a steady load of N clients, batches of a fraction of N: waiting for
      // half of them settles at 2N/3 -- wait until the requests that were waiting when it ended and
      // as many as it had are queued (while they fit in one batch), at most a quarter of its time
      // after it ended. Idle (a single client, or a request after a pause): start at once.
      const auto gather_until = last_end + last_took / 4;
      const size_t want = std::min(waiting_at_end + last_jobs, static_cast<size_t>(std::max(1, l_.max_batch)));
      if (last_jobs > 2 && queue_.size() < want && Clock::now() < gather_until)
        cv_.wait_until(l, gather_until, [&] { return quit_ || queue_.size() >= want; });
      // take the oldest job and every waiting job of the same kind that fits in one batch
      batch.push_back(queue_.front());
      queue_.pop_front();
      int64_t rows = batch[0]->n;
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->text == batch[0]->text && rows + (*it)->n <= l_.max_batch) {
          rows += (*it)->n;
          batch.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      queued_rows_ -= rows;
      metrics_.queue_depth(queued_rows_);
    }
    const auto t0 = Clock::now();
    try {
      pipeline::EmbedOptions eo;
      Tensor all;
      int64_t rows = 0;
      if (batch[0]->text) {
        std::vector<std::string> texts;
        for (auto& j : batch) texts.insert(texts.end(), j->texts.begin(), j->texts.end());
        rows = static_cast<int64_t>(texts.size());
        all = embed_text_bucketed(texts);
      } else {
        const size_t per = image::floats_per_image(emb_.preprocess_config());
        for (auto& j : batch) rows += j->n;
        std::vector<float> px(static_cast<size_t>(rows) * per);
        int64_t r = 0;
        for (auto& j : batch) {
          std::copy(j->px.begin(), j->px.end(), px.begin() + static_cast<int64_t>(r * per));
          r += j->n;
        }
        eo.batch_size = static_cast<int>(std::max<int64_t>(1, rows));
        all = emb_.embed_pixels(px.data(), rows, eo);
      }
      metrics_.model_batch(batch[0]->text, rows, std::chrono::duration<double>(Clock::now() - t0).count());
      waiting_at_end = waiting();
      const int64_t D = all.dim(1);
      int64_t r = 0;
      for (auto& j : batch) {
        Tensor t = Tensor::empty(DType::F32, {j->n, D});
        std::copy(all.ptr<float>() + r * D, all.ptr<float>() + (r + j->n) * D, t.ptr<float>());
        r += j->n;
        j->done.set_value(std::move(t));
      }
    } catch (...) {
      waiting_at_end = waiting();
      for (auto& j : batch) j->done.set_exception(std::current_exception());
    }
    last_end = Clock::now();
    last_took = last_end - t0;
    last_jobs = batch.size();
  }
}

// Texts padded to a few fixed shapes (rows to a power of two up to 8, then to a multiple of 8;
// tokens to a multiple of 16): the model caches its kernels per shape, and request batches would
// otherwise bring a new shape almost every time. Padding tokens are masked and padding rows dropped, so the embeddings are
// those of embed_texts.
Tensor EmbedQueue::embed_text_bucketed(const std::vector<std::string>& texts) {
  std::vector<int32_t> ids, mask;
  int64_t L;
  emb_.tokenize(texts, &ids, &mask, &L);
  const int64_t B = static_cast<int64_t>(texts.size());
  const int64_t Lb = std::min<int64_t>(std::max<int64_t>(L, emb_.max_text_tokens()), (L + 15) / 16 * 16);
  int64_t Bb = 1;
  while (Bb < B && Bb < 8) Bb *= 2;
  if (B > 8) Bb = (B + 7) / 8 * 8;  // a batch of 17 computes 24 rows, not 32
  const int32_t pad = emb_.tokenizer().pad_id();
  std::vector<int32_t> pid(static_cast<size_t>(Bb * Lb), pad), pm(static_cast<size_t>(Bb * Lb), 0);
  for (int64_t b = 0; b < Bb; ++b) {
    const int64_t src = b < B ? b : 0;  // spare rows repeat row 0 (an all-masked row is undefined)
    std::copy_n(ids.begin() + src * L, L, pid.begin() + b * Lb);
    std::copy_n(mask.begin() + src * L, L, pm.begin() + b * Lb);
  }
  Tensor f = emb_.model().text_features(pid.data(), pm.data(), Bb, Lb);
  Tensor out = Tensor::empty(DType::F32, {B, f.dim(1)});
  std::copy_n(f.ptr<float>(), B * f.dim(1), out.ptr<float>());
  model::l2_normalize_rows(out.ptr<float>(), B, out.dim(1));
  return out;
}

Tensor EmbedQueue::run(std::shared_ptr<Job> j) {
  auto f = j->done.get_future();
  {
    std::lock_guard<std::mutex> l(mu_);
    // a job alone may exceed the limit (it runs as one batch); none joins a queue that would
    if (queued_rows_ > 0 && queued_rows_ + j->n > l_.max_queue) {
      metrics_.queue_rejected();
      throw ApiError(503,
                     fmt::format("the server is busy: {} inputs are waiting for the model (limit {}); retry shortly",
                                 queued_rows_, l_.max_queue),
                     "", /*retry_after=*/1);
    }
    queued_rows_ += j->n;
    metrics_.queue_depth(queued_rows_);
    queue_.push_back(std::move(j));
  }
  cv_.notify_one();
  return f.get();
}

Tensor EmbedQueue::embed_texts(const std::vector<std::string>& texts) {
  if (!emb_.model().has_text()) throw ApiError(400, "this model has no text tower");
  const int64_t D = emb_.dim(), n = static_cast<int64_t>(texts.size());
  Tensor out = Tensor::empty(DType::F32, {n, D});
  // the texts not in the cache, each once, and the rows that wait for each
  auto j = std::make_shared<Job>();
  j->text = true;
  std::vector<std::vector<int64_t>> rows_of;
  std::unordered_map<std::string_view, size_t> missing;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const std::string& t = texts[static_cast<size_t>(i)];
    if (cache_.capacity() > 0 && cache_.get(t, out.ptr<float>() + i * D, D)) {
      ++hits;
      continue;
    }
    auto [it, added] = missing.emplace(t, j->texts.size());
    if (added) {
      j->texts.push_back(t);
      rows_of.emplace_back();
    }
    rows_of[it->second].push_back(i);
  }
  if (j->texts.empty()) {
    metrics_.text_cache(hits, 0, static_cast<int64_t>(cache_.size()));
    return out;
  }
  j->n = static_cast<int64_t>(j->texts.size());
  Tensor got = run(j);
  for (size_t m = 0; m < rows_of.size(); ++m) {
    const float* row = got.ptr<float>() + static_cast<int64_t>(m) * D;
    cache_.put(j->texts[m], row, D);
    for (int64_t i : rows_of[m]) std::copy_n(row, D, out.ptr<float>() + i * D);
  }
  metrics_.text_cache(hits, j->n, static_cast<int64_t>(cache_.size()));
  return out;
}

Tensor EmbedQueue::embed_image_bytes(const std::string& bytes, const std::string& name) {
  if (!emb_.model().has_vision()) throw ApiError(400, "this model has no vision tower");
  if (bytes.empty()) throw ApiError(400, "the image is empty");
  image::DecodeOptions d;
  if (l_.max_pixels > 0) d.max_pixels = l_.max_pixels;
  const size_t per = image::floats_per_image(emb_.preprocess_config());
  auto j = std::make_shared<Job>();
  j->n = 1;
  j->px.resize(per);
  {  // one of max_decodes slots, held while the decoded pixels exist
    struct Slot {
      std::counting_semaphore<>& s;
      explicit Slot(std::counting_semaphore<>& sem) : s(sem) { s.acquire(); }
      ~Slot() { s.release(); }
    } slot(decodes_);
    image::Image img;
    try {
      img = image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name,
                                  image::decode_options_for(emb_.preprocess_config(), d));
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("cannot read the image: {}", e.what()));
    }
    image::preprocess(img, emb_.preprocess_config(), j->px.data());
  }
  return run(std::move(j));
}

Tensor EmbedQueue::embed_images(const std::vector<const image::Image*>& images) {
  if (images.empty()) return Tensor::zeros(DType::F32, {0, emb_.dim()});
  if (!emb_.model().has_vision()) throw ApiError(400, "this model has no vision tower");
  const size_t per = image::floats_per_image(emb_.preprocess_config());
  auto j = std::make_shared<Job>();
  j->n = static_cast<int64_t>(images.size());
  j->px.resize(per * images.size());
  for (size_t i = 0; i < images.size(); ++i)
    image::preprocess(*images[i], emb_.preprocess_config(), j->px.data() + i * per);
  return run(std::move(j));
}

}  // namespace clipkit::server
