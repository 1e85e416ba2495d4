// Collective communication for data-parallel training. One process: every call is a no-op copy.
// Under `mpirun` (OpenMPI), the MPI implementation is used when clipkit was built with MPI.
// The trainer's collectives take backend tensors (embeddings, gradients); this MPI path hands their
// device addresses to MPI, which suits host-memory backends; on the cuda device the NCCL
// communicator (dist/nccl_comm.h) takes over: make_comm(CommOptions) picks it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
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

// The Comm for a command computing on `device`: NCCL (dist/nccl_comm.h) when the device is cuda and
// the launcher started more than one rank (MPI or not), else make_comm above. `rendezvous_dir`: where
// the NCCL id is exchanged when built without MPI (the run's --out; CLIPKIT_NCCL_DIR overrides it).
struct CommOptions {
  std::string device = "cpu";
  std::string rendezvous_dir;
  double rendezvous_timeout_s = 300;  // CLIPKIT_NCCL_TIMEOUT overrides it (seconds)
};
std::unique_ptr<Comm> make_comm(const CommOptions& o);
bool built_with_nccl();
bool launched_by_mpirun();
bool built_with_mpi();

}  // namespace clipkit::dist
