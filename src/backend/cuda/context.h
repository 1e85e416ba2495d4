// The device side of clipkit: which GPUs there are, and a Context per stream that every kernel
// launcher takes: the stream, the cuBLASLt/cuBLAS handles with their workspace and heuristic cache
// (backend/cuda/gemm.h), and a scratch arena for temporaries (rewound after each call).
#pragma once
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "backend/cuda/arena.h"

namespace clipkit::cuda {

// Usable CUDA devices: 0 when there is no driver, no GPU or a driver too old for this runtime
// (never throws). no_device_reason() says why in the runtime's words ("" when there is a device).
int device_count();
std::string no_device_reason();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability (9.0: H100/H200)
  int multiprocessors = 0;
  size_t memory_bytes = 0, l2_bytes = 0;
  int driver_version = 0, runtime_version = 0;  // e.g. 13000 = 13.0
};
DeviceInfo device_info(int device);

struct Blas;  // gemm.cpp

class Context {
 public:
  // Makes `device` current on this thread and creates a non-blocking stream on it; throws
  // clipkit::Error naming the failing CUDA call when there is no such device.
  explicit Context(int device = 0, size_t gemm_workspace_bytes = size_t{32} << 20);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  DeviceArena& scratch() { return scratch_; }
  Blas& blas() { return *blas_; }
  // Waits for everything queued on the stream; an error of an earlier kernel is thrown here.
  void sync() const;

  // Tests: run every GEMM epilogue as a separate kernel instead of cuBLASLt's fused one (and
  // blas().lt_enabled = false sends every product to cuBLAS).
  bool unfused_epilogues = false;

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<Blas> blas_;
  DeviceArena scratch_;
};

}  // namespace clipkit::cuda
