#include "dist/launch.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace clipkit::dist {
namespace {

int to_int(const char* name, const char* v, int min) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || x < min || x > (1 << 24))
    fail("launcher environment: {}={} is not a number ≥ {}", name, v, min);
  return static_cast<int>(x);
}

}  // namespace

LaunchEnv parse_launch_env(const std::function<const char*(const char*)>& getenv) {
  struct Scheme {
    const char *rank, *size, *size2, *local, *label;
  };
  static const Scheme schemes[] = {
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", nullptr, "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_*"},
      {"PMI_RANK", "PMI_SIZE", nullptr, "MPI_LOCALRANKID", "PMI_*"},
      // srun sets the step's task count; SLURM_NTASKS alone is also set inside an sbatch script
      {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_*"},
  };
  LaunchEnv e;
  for (const Scheme& s : schemes) {
    const char* size_name = getenv(s.size) ? s.size : s.size2;
    const char* rank = getenv(s.rank);
    const char* size = size_name ? getenv(size_name) : nullptr;
    if (!rank || !size) continue;
    e.launcher = s.label;
    e.rank = to_int(s.rank, rank, 0);
    e.size = to_int(size_name, size, 1);
    if (e.rank >= e.size) fail("launcher environment: {}={} is not below {}={}", s.rank, rank, size_name, size);
    const char* local = getenv(s.local);
    e.local_rank = local ? to_int(s.local, local, 0) : 0;
    break;
  }
  if (e.launcher.empty()) return e;
  for (const char* job : {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "PMI_JOBID", "SLURM_JOB_ID"})
    if (const char* v = getenv(job); v && *v) {
      e.job = v;
      const char* step = getenv("SLURM_STEP_ID");
      if (std::string(job) == "SLURM_JOB_ID" && step) e.job += std::string(".") + step;
      break;
    }
  return e;
}

LaunchEnv launch_env() {
  return parse_launch_env([](const char* n) { return std::getenv(n); });
}

}  // namespace clipkit::dist
