// The model queue without HTTP: a full queue refuses at once with 503 + Retry-After (never an
// unbounded wait), concurrent texts share batches (counted in the batch-size histogram), and the
// text cache answers repeated texts with the rows the model gave, counting hits and misses.
#include "server/embed_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server/api_error.h"
#include "test_util.h"

namespace clipkit::server {
namespace {

int64_t metric(const Metrics& m, const std::string& name) {
  const std::string text = m.render(0, 0);
  const auto at = text.find("\n" + name + " ");
  EXPECT_NE(at, std::string::npos) << name;
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 2));
}

class EmbedQueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { emb_ = pipeline::Embedder::load(test::data_path("models/tiny-clip")).release(); }
  static void TearDownTestSuite() { delete emb_; }
  static inline pipeline::Embedder* emb_ = nullptr;
  Metrics metrics_;
};

TEST_F(EmbedQueueTest, AFullQueueRefusesAtOnceWithRetryAfter) {
  EmbedQueue::Limits l;
  l.max_batch = 1;
  l.max_queue = 2;
  l.text_cache = 0;
  EmbedQueue q(*emb_, l, metrics_);
  std::atomic<int> ok{0}, refused{0}, wrong{0};
  std::atomic<double> slowest_refusal{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 12; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        try {
          Tensor e = q.embed_texts({"query " + std::to_string(t * 100 + i)});
          ok += e.dim(0) == 1;
        } catch (const ApiError& e) {
          const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (e.status != 503 || e.retry_after_s != 1 || std::string(e.what()).find("busy") == std::string::npos) wrong++;
          refused++;
          double cur = slowest_refusal.load();
          while (s > cur && !slowest_refusal.compare_exchange_weak(cur, s)) {
          }
        }
      }
    });
  for (auto& t : ts) t.join();
  std::printf("  %d answered, %d refused (slowest refusal %.2f ms)\n", ok.load(), refused.load(),
              1e3 * slowest_refusal.load());
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok + refused, 96);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_LT(slowest_refusal.load(), 0.5);  // refused without waiting for the model (10 ms when quiet: bench)
  EXPECT_EQ(metric(metrics_, "clipkit_model_queue_rejections_total"), refused.load());
  EXPECT_EQ(metric(metrics_, "clipkit_model_queue_depth"), 0);
  EXPECT_EQ(metric(metrics_, "clipkit_model_rows_total{kind=\"text\"}"), ok.load());
}

TEST_F(EmbedQueueTest, ConcurrentTextsShareBatchesAndTheHistogramCountsThem) {
  EmbedQueue::Limits l;
  l.max_batch = 16;
  l.text_cache = 0;
  EmbedQueue q(*emb_, l, metrics_);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 4; ++i) q.embed_texts({"text " + std::to_string(t * 10 + i)});
    });
  for (auto& t : ts) t.join();
  const int64_t batches = metric(metrics_, "clipkit_model_batches_total{kind=\"text\"}");
  EXPECT_EQ(metric(metrics_, "clipkit_model_batch_size_count{kind=\"text\"}"), batches);
  EXPECT_EQ(metric(metrics_, "clipkit_model_batch_size_sum{kind=\"text\"}"), 32);
  EXPECT_EQ(metric(metrics_, "clipkit_model_batch_size_bucket{kind=\"text\",le=\"+Inf\"}"), batches);
  EXPECT_LE(metric(metrics_, "clipkit_model_batch_size_bucket{kind=\"text\",le=\"1\"}"), batches);
  EXPECT_EQ(metric(metrics_, "clipkit_model_batch_size_bucket{kind=\"text\",le=\"16\"}"), batches);  // max_batch
}

TEST_F(EmbedQueueTest, TheTextCacheAnswersRepeatsWithTheModelsRows) {
  EmbedQueue::Limits l;
  l.text_cache = 2;
  EmbedQueue q(*emb_, l, metrics_);
  const Tensor ref = emb_->embed_texts({"a red circle", "two shapes", "a cat"}, {});
  const int64_t D = ref.dim(1);
  auto expect_rows = [&](const Tensor& got, std::vector<int> want) {
    ASSERT_EQ(got.dim(0), static_cast<int64_t>(want.size()));
    for (size_t r = 0; r < want.size(); ++r)
      for (int64_t d = 0; d < D; ++d)
        ASSERT_NEAR(got.ptr<float>()[static_cast<int64_t>(r) * D + d], ref.ptr<float>()[want[r] * D + d], 1e-5)
            << "row " << r;
  };
  // a repeat inside one request is embedded once
  expect_rows(q.embed_texts({"a red circle", "two shapes", "a red circle"}), {0, 1, 0});
  EXPECT_EQ(metric(metrics_, "clipkit_text_cache_misses_total"), 2);
  EXPECT_EQ(metric(metrics_, "clipkit_text_cache_hits_total"), 0);
  EXPECT_EQ(metric(metrics_, "clipkit_model_rows_total{kind=\"text\"}"), 2);
  // both cached: no model batch, identical rows
  const Tensor again = q.embed_texts({"two shapes", "a red circle"});
  expect_rows(again, {1, 0});
  EXPECT_EQ(metric(metrics_, "clipkit_text_cache_hits_total"), 2);
  EXPECT_EQ(metric(metrics_, "clipkit_model_rows_total{kind=\"text\"}"), 2);
  // a third text evicts the least recently used ("two shapes"), which the model embeds again
  expect_rows(q.embed_texts({"a cat"}), {2});
  expect_rows(q.embed_texts({"two shapes"}), {1});
  EXPECT_EQ(metric(metrics_, "clipkit_text_cache_misses_total"), 4);
  EXPECT_EQ(metric(metrics_, "clipkit_text_cache_entries"), 2);
}

}  // namespace
}  // namespace clipkit::server
