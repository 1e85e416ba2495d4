#include "backend/cuda/memory.h"

#include <atomic>

#include "backend/cuda/check.h"
#include "core/error.h"

namespace clipkit::cuda {

namespace {
[[noreturn]] void alloc_failed(const char* what, size_t bytes, cudaError_t e) {
  cudaGetLastError();  // a failed allocation leaves an error behind: clear it
  fail("CUDA: {} of {:.1f} MiB failed: {} ({})", what, bytes / 1048576.0, cudaGetErrorString(e), cudaGetErrorName(e));
}

std::atomic<uint64_t> generation{0};
}  // namespace

uint64_t device_memory_generation() { return generation.load(); }

namespace detail {
void* device_alloc(size_t bytes) {
  void* p = nullptr;
  if (const cudaError_t e = cudaMalloc(&p, bytes); e != cudaSuccess) alloc_failed("cudaMalloc", bytes, e);
  ++generation;
  return p;
}
void device_free(void* p) {
  ++generation;
  cudaFree(p);
}
void* pinned_alloc(size_t bytes) {
  void* p = nullptr;
  if (const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocDefault); e != cudaSuccess)
    alloc_failed("cudaHostAlloc (pinned host memory)", bytes, e);
  return p;
}
void pinned_free(void* p) { cudaFreeHost(p); }
}  // namespace detail

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
