#include "backend/cuda/memory.h"

#include "backend/cuda/check.h"
#include "core/error.h"

namespace clipkit::cuda {

namespace {
[[noreturn]] void alloc_failed(const char* what, size_t bytes, cudaError_t e) {
  cudaGetLastError();
  fail("CUDA: {} of {:.1f} MiB failed: {} ({})", what, bytes / 1048576.0, cudaGetErrorString(e), cudaGetErrorName(e));
}
}  // namespace

DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  if (const cudaError_t e = cudaMalloc(&p_, bytes); e != cudaSuccess) alloc_failed("cudaMalloc", bytes, e);
}
DeviceBuffer::~DeviceBuffer() {
  if (p_) cudaFree(p_);
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFree(p_);
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  if (const cudaError_t e = cudaHostAlloc(&p_, bytes, cudaHostAllocDefault); e != cudaSuccess)
    alloc_failed("cudaHostAlloc (pinned host memory)", bytes, e);
}
PinnedBuffer::~PinnedBuffer() {
  if (p_) cudaFreeHost(p_);
}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFreeHost(p_);
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (bytes) CLIPKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
}
void copy_to_host(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (bytes) CLIPKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
}
void copy_on_device(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (bytes) CLIPKIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
}
void fill_zero(void* dst, size_t bytes, cudaStream_t s) {
  if (bytes) CLIPKIT_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, s));
}

}  // namespace clipkit::cuda
