#include "dist/comm.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "dist/launch.h"
#include "dist/nccl_comm.h"

#ifdef CLIPKIT_HAVE_MPI
#include <mpi.h>
#endif

namespace clipkit::dist {

void Comm::allgather(const float* in, int64_t n, float* out) {
  if (out != in) std::memcpy(out, in, sizeof(float) * n);
}
void Comm::allreduce_sum(float*, int64_t) {}
void Comm::allreduce_sum(double*, int64_t) {}
void Comm::broadcast(void*, int64_t, int) {}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

#ifdef CLIPKIT_HAVE_MPI
bool built_with_mpi() { return true; }

namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) fail("MPI {} failed (error {})", what, rc);
}

// MPI counts are int: a larger message is an error, never a silently truncated count.
int count(int64_t n, const char* what) {
  if (n < 0 || n > std::numeric_limits<int>::max()) fail("MPI {} of {} elements: more than an int count holds", what, n);
  return static_cast<int>(n);
}

class MpiComm : public Comm {
 public:
  MpiComm(int* argc, char*** argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) check(MPI_Init(argc, argv), "init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allgather(const float* in, int64_t n, float* out) override {
    check(MPI_Allgather(in, count(n, "allgather"), MPI_FLOAT, out, count(n, "allgather"), MPI_FLOAT, MPI_COMM_WORLD), "allgather");
  }
  void allreduce_sum(float* x, int64_t n) override {
    check(MPI_Allreduce(MPI_IN_PLACE, x, count(n, "allreduce"), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "allreduce");
  }
  void allreduce_sum(double* x, int64_t n) override {
    check(MPI_Allreduce(MPI_IN_PLACE, x, count(n, "allreduce"), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "allreduce");
  }
  void broadcast(void* buf, int64_t bytes, int root) override {
    check(MPI_Bcast(buf, count(bytes, "broadcast"), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> make_comm(int* argc, char*** argv) {
  if (launched_by_mpirun()) return std::make_unique<MpiComm>(argc, argv);
  return std::make_unique<Comm>();
}
#else
bool built_with_mpi() { return false; }

std::unique_ptr<Comm> make_comm(int*, char***) {
  if (launched_by_mpirun())
    fail("launched by mpirun, but this clipkit was built without MPI (install libopenmpi-dev and rebuild)");
  return std::make_unique<Comm>();
}
#endif


std::unique_ptr<Comm> make_comm(const CommOptions& o) {
  const LaunchEnv env = launch_env();
  if (o.device != "cuda" || env.size < 2) return make_comm(nullptr, nullptr);
  if (!built_with_nccl())
    fail("--device cuda with {} ranks needs NCCL, and this clipkit was built without it (the CUDA toolkit's "
         "libnccl and nccl.h were not found when it was configured)", env.size);
  CommOptions eff = o;
  if (const char* d = std::getenv("CLIPKIT_NCCL_DIR"); d && *d) eff.rendezvous_dir = d;
  if (const char* t = std::getenv("CLIPKIT_NCCL_TIMEOUT"); t && *t) {
    char* end = nullptr;
    eff.rendezvous_timeout_s = std::strtod(t, &end);
    if (end == t || *end || eff.rendezvous_timeout_s <= 0) fail("CLIPKIT_NCCL_TIMEOUT={} is not a number of seconds > 0", t);
  }
  return make_nccl_comm(env, eff);
}

}  // namespace clipkit::dist
