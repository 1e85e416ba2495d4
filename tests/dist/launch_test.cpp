// The launcher's environment -> rank, size, local rank (dist/launch.h).
#include "dist/launch.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"

namespace clipkit::dist {
namespace {

LaunchEnv parse(const std::map<std::string, std::string>& env) {
  return parse_launch_env([&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& env) {
  try {
    parse(env);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, AloneIsRankZeroOfOne) {
  LaunchEnv e = parse({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.launcher, "");
}

TEST(LaunchEnv, OpenMpi) {
  LaunchEnv e = parse({{"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                       {"PMIX_NAMESPACE", "prterun-host-123@1"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.launcher, "OMPI_COMM_WORLD_*");  // ahead of the allocation's Slurm variables
  EXPECT_EQ(e.job, "prterun-host-123@1");
}

TEST(LaunchEnv, HydraPmi) {
  LaunchEnv e = parse({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "3"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.size, 4);
  EXPECT_EQ(e.local_rank, 3);
  EXPECT_EQ(e.launcher, "PMI_*");
  LaunchEnv no_local = parse({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}});
  EXPECT_EQ(no_local.local_rank, 0);
}

TEST(LaunchEnv, SlurmStepTasksWinOverTheAllocations) {
  // inside `sbatch --ntasks 8` without srun: the batch step is one task
  LaunchEnv batch = parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_STEP_NUM_TASKS", "1"}, {"SLURM_LOCALID", "0"}});
  EXPECT_EQ(batch.size, 1);
  LaunchEnv e = parse({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"}, {"SLURM_JOB_ID", "77"},
                       {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(e.rank, 6);
  EXPECT_EQ(e.size, 8);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.job, "77.0");
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EXPECT_NE(error_of({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}).find("OMPI_COMM_WORLD_RANK=x"),
            std::string::npos);
  EXPECT_NE(error_of({{"PMI_RANK", "0"}, {"PMI_SIZE", "0"}}).find("PMI_SIZE=0 is not a number ≥ 1"), std::string::npos);
  EXPECT_NE(error_of({{"PMI_RANK", "4"}, {"PMI_SIZE", "4"}}).find("PMI_RANK=4 is not below PMI_SIZE=4"), std::string::npos);
  EXPECT_NE(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "-1"}}).find("SLURM_LOCALID=-1"),
            std::string::npos);
  EXPECT_NE(error_of({{"PMI_RANK", "1"}, {"PMI_SIZE", "2x"}}).find("PMI_SIZE=2x"), std::string::npos);
}

}  // namespace
}  // namespace clipkit::dist
