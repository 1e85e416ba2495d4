// The NCCL id's rendezvous file without MPI (dist/rendezvous.h), and make_comm's choice of
// communicator (dist/comm.h) where no GPU is needed to see it.
#include "dist/rendezvous.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/error.h"
#include "dist/comm.h"

namespace clipkit::dist {
namespace {

namespace fs = std::filesystem;

std::string temp_folder(const char* tag) {
  std::string t = (fs::temp_directory_path() / (std::string("clipkit_rv_") + tag + "_XXXXXX")).string();
  if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
  return t;
}

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + 11) & 0xff);  // NUL bytes included
  return s;
}

// rank 1's error waiting on r ("" when it returned)
std::string waiting_error(const Rendezvous& r) {
  try {
    rendezvous_exchange(r, 1, "", 128);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Rendezvous, TwoThreadsGetRankZerosBytes) {
  const std::string dir = temp_folder("threads");
  Rendezvous r{dir + "/out", "nccl-id", 30};  // the folder is made by rank 0
  std::string got;
  std::thread other([&] { got = rendezvous_exchange(r, 1, "", 128); });  // waits for rank 0
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(rendezvous_exchange(r, 0, payload(128), 128), payload(128));
  other.join();
  EXPECT_EQ(got, payload(128));
  remove_rendezvous(r);
  EXPECT_FALSE(fs::exists(r.path()));
  fs::remove_all(dir);
}

TEST(Rendezvous, ThreeProcesses) {
  const std::string dir = temp_folder("procs");
  Rendezvous r{dir, "nccl-id-job7", 30};
  std::vector<pid_t> kids;
  for (int rank = 1; rank <= 2; ++rank) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 3;
      try {
        rc = rendezvous_exchange(r, rank, "", 128) == payload(128) ? 0 : 1;
      } catch (...) {
        rc = 2;
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  rendezvous_exchange(r, 0, payload(128), 128);
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: wrong bytes, 2: threw";
  }
  fs::remove_all(dir);
}

TEST(Rendezvous, WaitingRankTimesOutNamingTheFileAndFolder) {
  const std::string dir = temp_folder("timeout");
  Rendezvous r{dir, "nccl-id", 0.2};
  const std::string m = waiting_error(r);
  EXPECT_NE(m.find("rank 1 waited"), std::string::npos) << m;
  EXPECT_NE(m.find(dir + "/nccl-id"), std::string::npos) << m;
  EXPECT_NE(m.find("CLIPKIT_NCCL_DIR"), std::string::npos) << m;
  fs::remove_all(dir);
}

TEST(Rendezvous, AFileFromAnEarlierRunIsNotTaken) {
  const std::string dir = temp_folder("stale");
  Rendezvous r{dir, "nccl-id", 0.3};
  rendezvous_exchange(r, 0, payload(128), 128);
  fs::last_write_time(r.path(), process_start() - std::chrono::hours(1));  // a crashed run's
  const std::string m = waiting_error(r);
  EXPECT_NE(m.find("older than this run"), std::string::npos) << "took a stale file: " << m;
  fs::remove_all(dir);
}

TEST(Rendezvous, AForeignFileIsAnError) {
  const std::string dir = temp_folder("foreign");
  Rendezvous r{dir, "nccl-id", 5};
  std::ofstream(r.path()) << "something else";
  EXPECT_THROW(rendezvous_exchange(r, 1, "", 128), Error);
  rendezvous_exchange(r, 0, payload(64), 64);  // another size than the reader expects
  const std::string m = waiting_error(r);
  EXPECT_NE(m.find("not a clipkit rendezvous file of 128 bytes"), std::string::npos) << m;
  fs::remove_all(dir);
}

// Sets the launcher's variables for one test.
struct FakeLaunch {
  FakeLaunch(const char* rank, const char* size) {
    setenv("PMI_RANK", rank, 1);
    setenv("PMI_SIZE", size, 1);
  }
  ~FakeLaunch() {
    unsetenv("PMI_RANK");
    unsetenv("PMI_SIZE");
  }
};

TEST(MakeComm, CpuOrOneRankIsNotNccl) {
  auto one = make_comm(CommOptions{"cpu", ""});
  EXPECT_EQ(one->size(), 1);
  auto cuda_alone = make_comm(CommOptions{"cuda", ""});  // one process on a GPU: nothing to talk to
  EXPECT_EQ(cuda_alone->size(), 1);
}

TEST(MakeComm, CudaWithTwoRanksWithoutNcclSaysSo) {
  if (built_with_nccl()) GTEST_SKIP() << "built with NCCL: TrainCli.TwoGpusEqualOneGpu runs the NCCL path on 2 GPUs";
  FakeLaunch launch("1", "2");
  std::string m;
  try {
    make_comm(CommOptions{"cuda", "", 0.2});
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("--device cuda with 2 ranks needs NCCL"), std::string::npos) << m;
}

}  // namespace
}  // namespace clipkit::dist
