// A device arena: bump allocation from a few large blocks, for activations and scratch that live
// for one forward/backward pass. Allocations are 256-byte aligned (cuBLASLt's fastest kernels want
// 16 bytes or more) and stay valid until rewind()/reset(). Nothing is freed while the arena lives,
// so steady-state steps allocate nothing: reset() merges the blocks one round needed into one.
// An arena serves one stream: memory handed back by rewind() is only reused by work queued later
// on that stream, which runs after the work that used it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace clipkit::cuda {

class DeviceArena {
 public:
  // How blocks are obtained: cudaMalloc / cudaFree by default (tests plug in host memory).
  struct Allocator {
    void* (*alloc)(size_t bytes) = nullptr;
    void (*free)(void* p) = nullptr;
  };
  static Allocator device_allocator();
  static constexpr size_t kAlign = 256;
  static constexpr size_t kMinBlock = size_t{64} << 20;

  explicit DeviceArena(size_t initial_bytes = 0, Allocator a = device_allocator());
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  void* alloc_bytes(size_t bytes);
  template <typename T>
  T* alloc(int64_t n) { return static_cast<T*>(alloc_bytes(sizeof(T) * static_cast<size_t>(n))); }

  struct Mark {
    size_t block = 0, offset = 0;
  };
  Mark mark() const { return {cur_, off_}; }
  void rewind(Mark m);  // frees everything allocated after m was taken
  void reset();         // frees everything; several blocks become one of their total size

  size_t capacity() const;  // bytes held
  size_t used() const;      // bytes up to the allocation point (alignment padding and skipped block tails included)
  size_t peak() const { return peak_; }
  size_t blocks() const { return blocks_.size(); }

 private:
  struct Block {
    char* p;
    size_t size;
  };
  Block new_block(size_t bytes);
  Allocator a_;
  std::vector<Block> blocks_;
  size_t cur_ = 0, off_ = 0, peak_ = 0;
};

// Scratch for one call: everything allocated from `a` in this scope is handed back at its end.
class ArenaScope {
 public:
  explicit ArenaScope(DeviceArena& a) : a_(a), m_(a.mark()) {}
  ~ArenaScope() { a_.rewind(m_); }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  DeviceArena& a_;
  DeviceArena::Mark m_;
};

}  // namespace clipkit::cuda
