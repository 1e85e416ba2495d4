#include "dist/nccl_comm.h"

#include "core/error.h"

#ifdef CLIPKIT_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <string>

#include "backend/backend.h"
#include "backend/cuda/check.h"
#include "backend/cuda/context.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/memory.h"
#include "dist/rendezvous.h"
#endif

namespace clipkit::dist {

#ifdef CLIPKIT_HAVE_NCCL
bool built_with_nccl() { return true; }

namespace {

void check(ncclResult_t rc, const char* what, ncclComm_t comm = nullptr) {
  if (rc == ncclSuccess || rc == ncclInProgress) return;
  const char* last = comm ? ncclGetLastError(comm) : nullptr;
  fail("NCCL: {} failed: {}{}{}", what, ncclGetErrorString(rc), last && *last ? ": " : "", last ? last : "");
}

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // an unregistered host pointer on old runtimes: not sticky
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

class NcclComm : public Comm {
 public:
  NcclComm(const LaunchEnv& env, const CommOptions& o) : rank_(env.rank), size_(env.size) {
    const int gpus = cuda::device_count();
    if (env.local_rank >= gpus)
      fail("NCCL: local rank {} ({}) needs GPU {}, and this node has {} ({}): start at most one rank per GPU",
           env.local_rank, env.launcher, env.local_rank, gpus, gpus ? "usable CUDA devices" : cuda::no_device_reason());
    backend::backend_for("cuda");  // made here at the latest, on GPU backend::local_device()
    if (cuda::backend_device() != env.local_rank)
      fail("NCCL: the cuda backend runs on GPU {} but local rank {} needs GPU {} (backend::set_local_device must "
           "run before the backend is first used)", cuda::backend_device(), env.local_rank, env.local_rank);
    stream_ = cuda::backend_stream();
    CLIPKIT_CUDA_CHECK(cudaSetDevice(cuda::backend_device()));
    ncclUniqueId id{};
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::string bytes(reinterpret_cast<const char*>(&id), sizeof id);
    Rendezvous rv;
    if (built_with_mpi() && launched_by_mpirun()) {  // MPI carries the id (and stays up until we finish)
      host_ = make_comm(nullptr, nullptr);
      host_->broadcast(bytes.data(), static_cast<int64_t>(bytes.size()), 0);
    } else {
      if (o.rendezvous_dir.empty())
        fail("NCCL: {} ranks without MPI exchange their id through a file: give the run an output folder every rank "
             "sees, or set CLIPKIT_NCCL_DIR", size_);
      rv = {o.rendezvous_dir, "nccl-id" + (env.job.empty() ? std::string() : "-" + env.job), o.rendezvous_timeout_s};
      bytes = rendezvous_exchange(rv, rank_, bytes, sizeof id);
    }
    std::memcpy(&id, bytes.data(), sizeof id);
    check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");  // returns when every rank joined
    if (rank_ == 0 && !rv.dir.empty()) remove_rendezvous(rv);
    scratch_ = cuda::DeviceBuffer(sizeof(double));
  }
  ~NcclComm() override {
    if (comm_) {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allgather(const float* in, int64_t n, float* out) override {
    if (on_device(in) && on_device(out)) {
      check(ncclAllGather(in, out, static_cast<size_t>(n), ncclFloat32, comm_, stream_), "ncclAllGather", comm_);
      return;
    }
    float* d = staging<float>(static_cast<size_t>(n) * static_cast<size_t>(size_ + 1));
    cuda::copy_to_device(d, in, sizeof(float) * static_cast<size_t>(n), stream_);
    check(ncclAllGather(d, d + n, static_cast<size_t>(n), ncclFloat32, comm_, stream_), "ncclAllGather", comm_);
    cuda::copy_to_host(out, d + n, sizeof(float) * static_cast<size_t>(n) * static_cast<size_t>(size_), stream_);
    CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void allreduce_sum(float* x, int64_t n) override { allreduce(x, n, ncclFloat32, sizeof(float)); }
  void allreduce_sum(double* x, int64_t n) override { allreduce(x, n, ncclFloat64, sizeof(double)); }
  void broadcast(void* buf, int64_t bytes, int root) override {
    if (on_device(buf)) {
      check(ncclBroadcast(buf, buf, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_), "ncclBroadcast", comm_);
      return;
    }
    char* d = staging<char>(static_cast<size_t>(bytes));
    cuda::copy_to_device(d, buf, static_cast<size_t>(bytes), stream_);
    check(ncclBroadcast(d, d, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_), "ncclBroadcast", comm_);
    cuda::copy_to_host(buf, d, static_cast<size_t>(bytes), stream_);
    CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // every rank's queued work done and every rank here: a one-element all-reduce, waited for
  void barrier() override {
    check(ncclAllReduce(scratch_.data(), scratch_.data(), 1, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce",
          comm_);
    CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  void allreduce(void* x, int64_t n, ncclDataType_t t, size_t elem) {
    if (on_device(x)) {
      check(ncclAllReduce(x, x, static_cast<size_t>(n), t, ncclSum, comm_, stream_), "ncclAllReduce", comm_);
      return;
    }
    char* d = staging<char>(elem * static_cast<size_t>(n));
    cuda::copy_to_device(d, x, elem * static_cast<size_t>(n), stream_);
    check(ncclAllReduce(d, d, static_cast<size_t>(n), t, ncclSum, comm_, stream_), "ncclAllReduce", comm_);
    cuda::copy_to_host(x, d, elem * static_cast<size_t>(n), stream_);
    CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // device memory for host-pointer calls (grown, kept)
  template <typename T>
  T* staging(size_t count) {
    if (stage_.bytes() < sizeof(T) * count) {
      CLIPKIT_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be in use
      stage_ = cuda::DeviceBuffer(sizeof(T) * count);
    }
    return stage_.as<T>();
  }

  int rank_ = 0, size_ = 1;
  std::unique_ptr<Comm> host_;  // MPI, when it carried the id
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceBuffer stage_, scratch_;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(const LaunchEnv& env, const CommOptions& o) {
  return std::make_unique<NcclComm>(env, o);
}
#else
bool built_with_nccl() { return false; }

std::unique_ptr<Comm> make_nccl_comm(const LaunchEnv&, const CommOptions&) {
  fail("this clipkit was built without NCCL (multi-GPU data parallel needs -DCLIPKIT_CUDA=ON and the CUDA toolkit's NCCL)");
}
#endif

}  // namespace clipkit::dist
