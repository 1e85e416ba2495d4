#include "backend/cuda/arena.h"

#include <algorithm>

#include "backend/cuda/memory.h"
#include "core/error.h"

namespace clipkit::cuda {

namespace {
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
}  // namespace

DeviceArena::Allocator DeviceArena::device_allocator() { return {detail::device_alloc, detail::device_free}; }

DeviceArena::DeviceArena(size_t initial_bytes, Allocator a) : a_(a) {
  if (initial_bytes > 0) blocks_.push_back(new_block(round_up(initial_bytes, kAlign)));
}

DeviceArena::~DeviceArena() {
  for (const Block& b : blocks_) a_.free(b.p);
}

DeviceArena::Block DeviceArena::new_block(size_t bytes) { return {static_cast<char*>(a_.alloc(bytes)), bytes}; }

void* DeviceArena::alloc_bytes(size_t bytes) {
  const size_t size = round_up(std::max<size_t>(bytes, 1), kAlign);
  while (!(cur_ < blocks_.size() && off_ + size <= blocks_[cur_].size)) {
    // on to the next block, or a new one there: at least kMinBlock, and as large as all held so far
    const size_t next = blocks_.empty() ? 0 : cur_ + 1;
    if (next >= blocks_.size() || blocks_[next].size < size)
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(next),
                     new_block(std::max({size, kMinBlock, capacity()})));
    cur_ = next;
    off_ = 0;
  }
  void* p = blocks_[cur_].p + off_;
  off_ += size;
  peak_ = std::max(peak_, used());
  return p;
}

void DeviceArena::rewind(Mark m) {
  CLIPKIT_ASSERT(m.block < cur_ || (m.block == cur_ && m.offset <= off_));  // a mark of this arena, not ahead
  cur_ = m.block;
  off_ = m.offset;
}

void DeviceArena::reset() {
  cur_ = 0;
  off_ = 0;
  if (blocks_.size() <= 1) return;
  const size_t total = capacity();
  for (const Block& b : blocks_) a_.free(b.p);
  blocks_.clear();
  blocks_.push_back(new_block(total));
}

size_t DeviceArena::capacity() const {
  size_t s = 0;
  for (const Block& b : blocks_) s += b.size;
  return s;
}

size_t DeviceArena::used() const {
  size_t s = off_;
  for (size_t i = 0; i < cur_ && i < blocks_.size(); ++i) s += blocks_[i].size;
  return s;
}

}  // namespace clipkit::cuda
