// Where this process stands in a multi-process launch (mpirun, mpiexec/hydra, srun): its rank, the
// number of ranks and its rank on this node, read from the launcher's environment. Needs no MPI, so
// a build without it (the standalone GPU build) still knows its place and picks its GPU by local rank.
#pragma once
#include <functional>
#include <string>

namespace clipkit::dist {

struct LaunchEnv {
  int rank = 0, size = 1, local_rank = 0;
  std::string launcher;  // "" alone; else the variables it came from ("OMPI_COMM_WORLD_*", "PMI_*", "SLURM_*")
  std::string job;       // the launch's id where the launcher gives one ("" else): names the rendezvous file
};

// Open MPI (OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK), then MPICH/Intel MPI's hydra (PMI_RANK/PMI_SIZE,
// MPI_LOCALRANKID), then Slurm's srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS or SLURM_NTASKS,
// SLURM_LOCALID). A value that is not a number, or a rank outside [0, size), throws clipkit::Error
// naming the variable. `getenv` is the lookup (tests pass their own).
LaunchEnv parse_launch_env(const std::function<const char*(const char*)>& getenv);
LaunchEnv launch_env();  // this process's

}  // namespace clipkit::dist
