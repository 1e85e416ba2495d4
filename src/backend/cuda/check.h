// Error checking for CUDA, cuBLAS(Lt) and kernel launches: a failed call throws clipkit::Error
// naming the call, where it was made, and the library's own message, e.g.
//   "CUDA: cudaMalloc(&p, bytes) failed at arena.cpp:40: out of memory (cudaErrorMemoryAllocation)"
// Kept free of fmt so that .cu files can include it.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

namespace clipkit::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* call, const char* file, int line);
// After a kernel launch: cudaGetLastError(), thrown as "CUDA: launch of <kernel> failed at ...".
void check_launch(const char* kernel, const char* file, int line);
// Throws clipkit::Error(msg): for argument checks in .cu files.
[[noreturn]] void fail_msg(const std::string& msg);

}  // namespace clipkit::cuda

#define CLIPKIT_CUDA_CHECK(call)                                                              \
  do {                                                                                        \
    const cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) ::clipkit::cuda::throw_cuda_error(e_, #call, __FILE__, __LINE__); \
  } while (0)

#define CLIPKIT_CUBLAS_CHECK(call)                                                                          \
  do {                                                                                                      \
    const int s_ = static_cast<int>(call);                                                                  \
    if (s_ != 0) ::clipkit::cuda::throw_cublas_error(s_, #call, __FILE__, __LINE__);                        \
  } while (0)

// After each kernel launch: a bad launch configuration shows up here, naming the kernel.
#define CLIPKIT_LAUNCH_CHECK(kernel) ::clipkit::cuda::check_launch(#kernel, __FILE__, __LINE__)
