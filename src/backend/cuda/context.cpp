#include "backend/cuda/context.h"

#include "backend/cuda/blas.h"
#include "backend/cuda/check.h"

namespace clipkit::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // not sticky: leave no error behind for the next call
    return 0;
  }
  return n;
}

std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  cudaGetLastError();
  if (e != cudaSuccess) return cudaGetErrorString(e);
  return n > 0 ? "" : "no CUDA device";
}

DeviceInfo device_info(int device) {
  cudaDeviceProp p{};
  CLIPKIT_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceInfo d;
  d.index = device;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.memory_bytes = p.totalGlobalMem;
  d.l2_bytes = static_cast<size_t>(p.l2CacheSize);
  CLIPKIT_CUDA_CHECK(cudaDriverGetVersion(&d.driver_version));
  CLIPKIT_CUDA_CHECK(cudaRuntimeGetVersion(&d.runtime_version));
  return d;
}

Context::Context(int device, size_t gemm_workspace_bytes) : device_(device) {
  CLIPKIT_CUDA_CHECK(cudaSetDevice(device));
  CLIPKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    blas_ = std::make_unique<Blas>(stream_, gemm_workspace_bytes);
  } catch (...) {
    cudaStreamDestroy(stream_);
    throw;
  }
}

Context::~Context() {
  if (stream_) cudaStreamSynchronize(stream_);
  blas_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

void Context::sync() const { CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace clipkit::cuda
