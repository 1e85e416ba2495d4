#include "dataset/shard_batches.h"

#include "core/error.h"
#include "io/tar_reader.h"

namespace clipkit::dataset {

ShardBatchSource::ShardBatchSource(std::vector<std::string> shards, ShardBatchOptions o)
    : shards_(std::move(shards)), o_(std::move(o)) {
  if (shards_.empty()) fail("no shards to read");
  if (o_.shuffle_buffer < 1) fail("shuffle buffer must hold at least 1 sample, got {}", o_.shuffle_buffer);
  epoch_size();
  start_epoch(0);
}

ShardBatchSource::~ShardBatchSource() = default;

uint64_t ShardBatchSource::next_rand() {
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t ShardBatchSource::epoch_size() {
  if (epoch_size_ < 0) {
    ShardOptions so;
    so.caption_key = o_.caption_key;
    so.read_images = false;
    ShardStream st(shards_, so);
    ShardSample s;
    int64_t n = 0;
    first_row_.assign(shards_.size(), 0);
    std::vector<int64_t> count(shards_.size(), 0);
    while (st.next(&s)) ++n, ++count[static_cast<size_t>(s.shard_pos)];
    for (size_t i = 1; i < shards_.size(); ++i) first_row_[i] = first_row_[i - 1] + count[i - 1];
    epoch_size_ = n;
  }
  return epoch_size_;
}

void ShardBatchSource::start_epoch(int64_t epoch) {
  rng_ = o_.seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch + 1));
  order_.resize(shards_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
  if (o_.shuffle)
    for (size_t i = order_.size(); i-- > 1;) std::swap(order_[i], order_[next_rand() % (i + 1)]);
  std::vector<std::string> order;
  for (int64_t i : order_) order.push_back(shards_[static_cast<size_t>(i)]);
  ShardOptions so;
  so.caption_key = o_.caption_key;
  so.read_images = false;  // each pull decides
  stream_ = std::make_unique<ShardStream>(std::move(order), so);
  buffer_.clear();
  stream_done_ = false;
}

bool ShardBatchSource::pull(Entry* e, bool load) {
  if (stream_done_) return false;
  if (!stream_->next(&e->s, load)) {
    stream_done_ = true;
    return false;
  }
  e->loaded = load;
  if (load) image_bytes_read_ += static_cast<int64_t>(e->s.image.size());
  return true;
}

bool ShardBatchSource::emit(Entry* out, bool load) {
  if (!o_.shuffle) return pull(out, load);
  while (static_cast<int64_t>(buffer_.size()) < o_.shuffle_buffer && !stream_done_) {
    Entry e;
    if (pull(&e, load)) buffer_.push_back(std::move(e));
  }
  if (buffer_.empty()) return false;
  const size_t k = next_rand() % buffer_.size();
  *out = std::move(buffer_[k]);
  Entry e;
  if (pull(&e, load)) {
    buffer_[k] = std::move(e);
  } else {
    if (k + 1 != buffer_.size()) buffer_[k] = std::move(buffer_.back());
    buffer_.pop_back();
  }
  return true;
}

bool ShardBatchSource::next_batch(int64_t batch, std::vector<BatchSample>* out) {
  if (batch <= 0) fail("batch size must be positive, got {}", batch);
  out->clear();
  Entry e;
  while (static_cast<int64_t>(out->size()) < batch && emit(&e, true)) {
    if (!e.loaded) {  // entered the buffer while skipping: read it now, from its place in the archive
      e.s.image = io::read_member_at(e.s.shard, e.s.image_offset, e.s.image_size);
      image_bytes_read_ += static_cast<int64_t>(e.s.image.size());
    }
    BatchSample b;
    b.index = first_row_[static_cast<size_t>(order_[static_cast<size_t>(e.s.shard_pos)])] + e.s.in_shard;
    b.key = std::move(e.s.key);
    b.caption = std::move(e.s.caption);
    b.path = e.s.path();
    b.image = std::move(e.s.image);
    out->push_back(std::move(b));
  }
  return !out->empty();
}

void ShardBatchSource::skip_batches(int64_t batches, int64_t batch) {
  if (batch <= 0) fail("batch size must be positive, got {}", batch);
  Entry e;
  for (int64_t i = 0; i < batches * batch; ++i)
    if (!emit(&e, false)) return;
}

LoadReport ShardBatchSource::report() const { return stream_->report(); }

}  // namespace clipkit::dataset
