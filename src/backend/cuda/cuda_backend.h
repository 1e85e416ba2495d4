// The process's "cuda" backend (cuda_backend.cpp, made by backend::backend_for on first use, on
// GPU backend::local_device()): its stream, on which every op it runs is issued, and its device --
// for work that must be ordered with those ops without a host wait (the NCCL collectives,
// dist/nccl_comm.h). Both make the backend when it is not made yet (throwing without a GPU).
#pragma once
#include <cuda_runtime_api.h>

namespace clipkit::cuda {

cudaStream_t backend_stream();
int backend_device();

}  // namespace clipkit::cuda
