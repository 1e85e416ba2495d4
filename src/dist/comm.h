// Collective communication for data-parallel training. One process: every call is a no-op copy.
// Under `mpirun` (OpenMPI), the MPI implementation is used when clipkit was built with MPI.
// The trainer's collectives take backend tensors (embeddings, gradients); this MPI path hands their
// device addresses to MPI, which suits host-memory backends (and CUDA-aware MPI): the seam where
// an NCCL communicator takes over for CUDA.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/tensor.h"

namespace clipkit::dist {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // out [size * n] = concatenation of every rank's in [n] (rank order)
  virtual void allgather(const float* in, int64_t n, float* out);
  // x [n] = sum over ranks of x
  virtual void allreduce_sum(float* x, int64_t n);
  virtual void allreduce_sum(double* x, int64_t n);
  // root's buf [bytes] to everyone
  virtual void broadcast(void* buf, int64_t bytes, int root = 0);
  virtual void barrier() {}
  // The same over backend tensors (F32, contiguous): out = every rank's in, in rank order; x = sum.
  void allgather(const backend::Tensor& in, const backend::Tensor& out) {
    allgather(in.as<float>(), in.numel(), out.as<float>());
  }
  void allreduce_sum(const backend::Tensor& x) { allreduce_sum(x.as<float>(), x.numel()); }
};

// MPI if launched by mpirun and built with it, else the single-process Comm.
std::unique_ptr<Comm> make_comm(int* argc, char*** argv);
bool launched_by_mpirun();
bool built_with_mpi();

}  // namespace clipkit::dist
