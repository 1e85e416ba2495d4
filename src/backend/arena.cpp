#include "backend/arena.h"

#include "backend/backend.h"
#include "core/error.h"

namespace clipkit::backend {
namespace {
constexpr size_t kAlign = 64, kMinBlock = size_t{16} << 20;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Tensor Arena::alloc(DType t, Shape s) {
  const size_t bytes = round_up(std::max<size_t>(1, static_cast<size_t>(clipkit::numel(s)) * dtype_size(t)));
  while (cur_ < blocks_.size() && off_ + bytes > blocks_[cur_].size) {  // the next block that fits
    ++cur_;
    off_ = 0;
  }
  if (cur_ == blocks_.size()) {
    const size_t size = std::max(bytes, kMinBlock);
    blocks_.push_back({be_.allocate(size), size});
    off_ = 0;
  }
  void* p = static_cast<char*>(blocks_[cur_].mem.get()) + off_;
  off_ += bytes;
  used_ += bytes;
  high_ = std::max(high_, used_);
  return Tensor(t, std::move(s), p, nullptr);
}

void Arena::release(const Mark& m) {
  CLIPKIT_ASSERT(m.used <= used_);
  cur_ = m.block;
  off_ = m.offset;
  used_ = m.used;
  if (used_ == 0 && blocks_.size() > 1) {  // everything given back: one block of the largest size used
    size_t total = 0;
    for (auto& b : blocks_) total += b.size;
    blocks_.clear();
    const size_t size = std::max(high_, std::min(total, high_ + kMinBlock));
    blocks_.push_back({be_.allocate(size), size});
    cur_ = off_ = 0;
  }
}

}  // namespace clipkit::backend
