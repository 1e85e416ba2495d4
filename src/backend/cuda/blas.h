// The cuBLASLt / cuBLAS state of one Context (one stream): handles, the workspace both use (they
// run in stream order, so they can share it), and the cached cuBLASLt plans (descriptors and the
// heuristic's algorithm per problem). Not thread-safe: one per stream, like the Context.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>

#include <memory>

#include "backend/cuda/gemm.h"
#include "backend/cuda/memory.h"

namespace clipkit::cuda {

struct Blas {
  Blas(cudaStream_t s, size_t workspace_bytes);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // D = op(A) op(B) (+ beta D) in the row-major terms of gemm(), as the cuBLASLt problem p, with
  // cuBLASLt epilogue `epi` (a cublasLtEpilogue_t) whose vector (bias or bias gradient, fp32) is
  // `vec`. Returns false when cuBLASLt has no algorithm for it.
  bool matmul(const LtProblem& p, const void* A, const void* B, DType ab, void* D, DType d, float beta, int epi,
              const void* vec, const Batch& batch);
  // The same without an epilogue; cuBLAS's gemmEx when cuBLASLt has no algorithm (an odd leading
  // dimension of bf16 rows, say): every plain product runs.
  void matmul_or_fail(const LtProblem& p, const void* A, const void* B, DType ab, void* D, DType d, float beta,
                      const Batch& batch);
  size_t cached_plans() const;
  // Tests: false sends every product to cuBLAS (the path of the problems cuBLASLt declines).
  bool lt_enabled = true;

  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  cublasHandle_t handle = nullptr;
  DeviceBuffer workspace;
  struct Plans;
  std::unique_ptr<Plans> plans;
};

}  // namespace clipkit::cuda
