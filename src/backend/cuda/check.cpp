#include "backend/cuda/check.h"

#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstring>

#include "core/error.h"

namespace clipkit::cuda {

namespace {
const char* base_name(const char* path) {
  const char* s = std::strrchr(path, '/');
  return s ? s + 1 : path;
}
}  // namespace

void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  fail("CUDA: {} failed at {}:{}: {} ({})", call, base_name(file), line, cudaGetErrorString(e), cudaGetErrorName(e));
}

void throw_cublas_error(int status, const char* call, const char* file, int line) {
  fail("cuBLAS: {} failed at {}:{}: {}", call, base_name(file), line,
       cublasGetStatusString(static_cast<cublasStatus_t>(status)));
}

void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail("CUDA: launch of {} failed at {}:{}: {} ({})", kernel, base_name(file), line, cudaGetErrorString(e),
         cudaGetErrorName(e));
}

void fail_msg(const std::string& msg) { throw Error(msg); }

}  // namespace clipkit::cuda
