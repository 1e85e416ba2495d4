// Owned device and pinned host memory (RAII), and the copies between them.
//   DeviceBuffer: cudaMalloc'd, for what outlives a step (weights, optimizer state).
//   PinnedBuffer: cudaHostAlloc'd page-locked host memory, so host -> device copies of decoded
//   images and token ids run asynchronously and overlap with kernels on another stream.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace clipkit::cuda {

namespace detail {
// cudaMalloc / cudaHostAlloc that throw clipkit::Error naming the size and the runtime's message;
// the frees report nothing (they run in destructors).
void* device_alloc(size_t bytes);
void device_free(void* p);
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);
}  // namespace detail

// Counts every device_alloc and device_free of the process: a captured graph addresses device
// memory directly and is replayed only while this is what it was at the end of the capture.
uint64_t device_memory_generation();

// Move-only ownership of `bytes` from Alloc, given back to Free.
template <void* (*Alloc)(size_t), void (*Free)(void*)>
class OwnedMemory {
 public:
  OwnedMemory() = default;
  explicit OwnedMemory(size_t bytes) : p_(bytes ? Alloc(bytes) : nullptr), n_(bytes) {}
  ~OwnedMemory() {
    if (p_) Free(p_);
  }
  OwnedMemory(OwnedMemory&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  OwnedMemory& operator=(OwnedMemory&& o) noexcept {
    if (this != &o) {
      if (p_) Free(p_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  OwnedMemory(const OwnedMemory&) = delete;
  OwnedMemory& operator=(const OwnedMemory&) = delete;
  void* data() const { return p_; }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

using DeviceBuffer = OwnedMemory<detail::device_alloc, detail::device_free>;
using PinnedBuffer = OwnedMemory<detail::pinned_alloc, detail::pinned_free>;

// Stream-ordered copies (asynchronous with pinned host memory).
void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s);
void copy_to_host(void* dst, const void* src, size_t bytes, cudaStream_t s);
void copy_on_device(void* dst, const void* src, size_t bytes, cudaStream_t s);
void fill_zero(void* dst, size_t bytes, cudaStream_t s);

}  // namespace clipkit::cuda
