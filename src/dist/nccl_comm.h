// The NCCL communicator: one rank per GPU under mpirun / mpiexec / srun, its collectives on the
// device, on the stream of the process's cuda backend (backend/cuda/cuda_backend.h), so they are
// ordered with the model's ops without a host wait. Tensor collectives (embeddings, gradients) pass
// device pointers straight to NCCL; a host pointer (the feature cache's embeddings, a loss's double)
// is staged through device memory and the call returns with the result on the host.
//
// Set-up: the rank, size and local rank come from the launcher's environment (dist/launch.h); the
// process's GPU is its local rank, chosen before the cuda backend is first made (the CLI sets
// backend::set_local_device early); rank 0 makes the ncclUniqueId and hands it to the others by
// MPI broadcast when built with MPI, else through a rendezvous file (dist/rendezvous.h) in
// CommOptions::rendezvous_dir.
#pragma once
#include <memory>

#include "dist/comm.h"
#include "dist/launch.h"

namespace clipkit::dist {

// Throws clipkit::Error when built without NCCL, when there are fewer GPUs on the node than local
// ranks, or when the id cannot be exchanged.
std::unique_ptr<Comm> make_nccl_comm(const LaunchEnv& env, const CommOptions& o);

}  // namespace clipkit::dist
