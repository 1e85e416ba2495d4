// The single-process communicator: what every rank-aware caller relies on when there is no mpirun
// (the MPI path is checked end to end by the CLI tests that launch `mpirun -np 2/3`).
#include "dist/comm.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

namespace clipkit::dist {
namespace {

TEST(Comm, OneProcessIsRankZeroOfOne) {
  Comm c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
}

TEST(Comm, OneProcessCollectivesLeaveOrCopyTheData) {
  Comm c;
  std::vector<float> in{1.5f, -2.f, 3.f}, out(3, 0.f);
  c.allgather(in.data(), 3, out.data());
  EXPECT_EQ(out, in);
  c.allgather(in.data(), 3, in.data());  // in place
  EXPECT_EQ(out, in);
  std::vector<float> xf{1.f, 2.f};
  std::vector<double> xd{0.25, -4.0};
  c.allreduce_sum(xf.data(), 2);
  c.allreduce_sum(xd.data(), 2);
  EXPECT_EQ(xf, (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(xd, (std::vector<double>{0.25, -4.0}));
  char buf[4] = {'a', 'b', 'c', 'd'};
  c.broadcast(buf, 4);
  EXPECT_EQ(std::string(buf, 4), "abcd");
}

TEST(Comm, WithoutALauncherMakeCommGivesOneProcess) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) unsetenv(v);
  EXPECT_FALSE(launched_by_mpirun());
  auto c = make_comm(nullptr, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->size(), 1);
}

}  // namespace
}  // namespace clipkit::dist
