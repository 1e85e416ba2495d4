// Host-side checks of the CUDA backend that need no GPU (they run in every CI build): the
// row-major -> cuBLASLt mapping, pointer alignment, the arena's bookkeeping, the dropout factor
// the kernels compute, the AdamW chunk table, and the error messages.
#include <gtest/gtest.h>

#include <cublas_v2.h>

#include <cstdlib>
#include <vector>

#include "backend/cpu/dropout.h"
#include "backend/cuda/arena.h"
#include "backend/cuda/capture.h"
#include "backend/cuda/check.h"
#include "backend/cuda/dropout.h"
#include "backend/cuda/fused_attention.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/optimizer.h"
#include "backend/dropout_hash.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "fd_util.h"
#include "reference.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

// Column-major D = op(A) op(B) the way cuBLASLt reads the problem (storage rows x cols, ld).
std::vector<double> colmajor_gemm(const LtProblem& p, const std::vector<double>& A, const std::vector<double>& B) {
  std::vector<double> D(static_cast<size_t>(p.ldc * p.c_cols), 0.0);
  auto a = [&](int64_t i, int64_t k) { return p.trans_a ? A[k + i * p.lda] : A[i + k * p.lda]; };  // op(A) m x k
  auto b = [&](int64_t k, int64_t j) { return p.trans_b ? B[j + k * p.ldb] : B[k + j * p.ldb]; };  // op(B) k x n
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < p.k; ++k) s += a(i, k) * b(k, j);
      D[i + j * p.ldc] = s;
    }
  return D;
}

TEST(CudaHost, LtProblemComputesTheRowMajorProduct) {
  const int64_t M = 5, N = 7, K = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
      std::vector<double> A(static_cast<size_t>((ta ? K : M) * lda)), B(static_cast<size_t>((tb ? N : K) * ldb));
      std::mt19937 g(ta * 2 + tb);
      std::uniform_real_distribution<double> d(-1, 1);
      for (auto& v : A) v = d(g);
      for (auto& v : B) v = d(g);
      const LtProblem p = lt_problem(ta, tb, M, N, K, lda, ldb, ldc);
      EXPECT_EQ(p.m, N);
      EXPECT_EQ(p.n, M);
      EXPECT_EQ(p.k, K);
      // cuBLASLt's A is our B and the other way round; each matrix's stored size covers its op's
      EXPECT_EQ(p.trans_a ? p.a_cols : p.a_rows, p.m);
      EXPECT_EQ(p.trans_b ? p.b_rows : p.b_cols, p.n);
      EXPECT_LE(p.a_rows, p.lda);
      EXPECT_LE(p.b_rows, p.ldb);
      const std::vector<double> D = colmajor_gemm(p, B, A);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k)
            s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
          EXPECT_NEAR(D[i * ldc + j], s, 1e-12) << "op " << ta << tb << " at " << i << "," << j;
        }
    }
}

TEST(CudaHost, PointerAlignment) {
  alignas(256) static char buf[1024];
  EXPECT_EQ(pointer_alignment(buf), 256);
  EXPECT_EQ(pointer_alignment(buf + 512), 256);
  EXPECT_EQ(pointer_alignment(buf + 16), 16);
  EXPECT_EQ(pointer_alignment(buf + 2), 2);
  EXPECT_EQ(pointer_alignment(buf + 3), 1);
  EXPECT_EQ(pointer_alignment(buf + 96), 32);
}

int g_allocs = 0, g_frees = 0;
void* host_alloc(size_t n) {
  ++g_allocs;
  return std::aligned_alloc(256, (n + 255) / 256 * 256);
}
void host_free(void* p) {
  ++g_frees;
  std::free(p);
}

TEST(CudaHost, ArenaBumpsRewindsAndMergesBlocks) {
  g_allocs = g_frees = 0;
  {
    DeviceArena a(1000, {host_alloc, host_free});
    EXPECT_EQ(a.capacity(), 1024u);
    char* p1 = static_cast<char*>(a.alloc_bytes(10));
    char* p2 = static_cast<char*>(a.alloc_bytes(300));
    EXPECT_EQ(p2 - p1, 256);  // 256-byte granules
    EXPECT_EQ(pointer_alignment(p2), 256);
    const DeviceArena::Mark m = a.mark();
    void* p3 = a.alloc_bytes(4000);  // does not fit: a second block
    EXPECT_EQ(a.blocks(), 2u);
    EXPECT_GE(a.capacity(), 1024u + 4096u);
    {
      ArenaScope scope(a);
      a.alloc_bytes(100);
    }
    EXPECT_EQ(a.used(), 1024u + 4096u);  // the scope handed its allocation back
    a.rewind(m);
    EXPECT_EQ(a.used(), 768u);
    EXPECT_EQ(a.alloc_bytes(4000), p3);  // the second block is reused, not allocated again
    EXPECT_EQ(g_allocs, 2);
    EXPECT_EQ(a.peak(), 1024u + 4096u + 256u);  // the scope's allocation was the high point
    a.reset();  // two blocks become one of their total size
    EXPECT_EQ(a.blocks(), 1u);
    EXPECT_EQ(g_allocs, 3);
    EXPECT_EQ(g_frees, 2);
    EXPECT_EQ(a.used(), 0u);
    a.alloc_bytes(1024 + 4000);  // the round that needed two blocks now fits in one
    EXPECT_EQ(g_allocs, 3);
  }
  EXPECT_EQ(g_frees, 3);
}

TEST(CudaHost, DropoutFactorIsTheCpuMask) {
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
    const uint64_t stream = backend::dropout_stream(1234, 7);
    const float keep = dropout_keep_scale(p);
    const int64_t n = 4099;
    std::vector<float> cpu(static_cast<size_t>(n));
    backend::cpu::dropout_scales(stream, 100, n, p, keep, cpu.data());  // the CPU's AVX2 path
    int64_t dropped = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float f = dropout_factor(stream, static_cast<uint64_t>(100 + j), p, keep);
      ASSERT_EQ(f, cpu[static_cast<size_t>(j)]) << "p " << p << " element " << j;
      dropped += f == 0.0f;
    }
    EXPECT_NEAR(static_cast<double>(dropped) / n, p, 0.03);
  }
  EXPECT_THROW(dropout_keep_scale(1.5f), Error);
  EXPECT_THROW(dropout_keep_scale(-0.1f), Error);
}

TEST(CudaHost, AdamWChunkTableCoversEveryElementOnce) {
  const auto chunks = adamw_chunks({10, 0, 9}, 4);
  ASSERT_EQ(chunks.size(), 6u);  // 4+4+2 and 4+4+1
  int64_t covered[3] = {0, 0, 0};
  for (const auto& c : chunks) {
    EXPECT_EQ(c.begin, covered[c.param]);
    covered[c.param] += c.count;
    EXPECT_LE(c.count, 4);
  }
  EXPECT_EQ(covered[0], 10);
  EXPECT_EQ(covered[1], 0);
  EXPECT_EQ(covered[2], 9);
}

TEST(CudaHost, ErrorsNameTheCallAndTheLibraryMessage) {
  try {
    throw_cuda_error(cudaErrorMemoryAllocation, "cudaMalloc(&p, bytes)", "/x/src/backend/cuda/arena.cpp", 42);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cudaMalloc(&p, bytes)"), std::string::npos) << m;
    EXPECT_NE(m.find("arena.cpp:42"), std::string::npos) << m;
    EXPECT_NE(m.find("cudaErrorMemoryAllocation"), std::string::npos) << m;
  }
  try {
    CLIPKIT_CUBLAS_CHECK(CUBLAS_STATUS_NOT_SUPPORTED);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_NOT_SUPPORTED"), std::string::npos) << e.what();
  }
}

TEST(CudaHost, WithoutAGpuAContextThrowsAndNothingAborts) {
  if (device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_FALSE(no_device_reason().empty());
  try {
    Context ctx;
    FAIL() << "a Context without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaSetDevice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(device_count(), 0);  // and the failed call left nothing behind
}

}  // namespace
}  // namespace clipkit::cuda

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

// The GPU attention tests' backward reference, checked here against finite differences of the
// forward's definition (with causal and padding masks and dropout).
TEST(CudaHost, AttentionBackwardReferenceMatchesFiniteDifferences) {
  const backend::AttentionShape s{2, 5, 2, 3};
  const std::vector<int32_t> mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 0};
  for (bool causal : {false, true})
    for (float p : {0.0f, 0.3f}) {
      const backend::Dropout drop{p, 5, 2};
      const std::vector<double> qkv = to_f64(randn(static_cast<size_t>(s.B * s.L * 3 * s.C()), 21));
      const std::vector<float> r = randn(static_cast<size_t>(s.B * s.L * s.C()), 22);
      const std::vector<double> fd =
          fd_grad([&](const std::vector<double>& x) { return attn_ref(x, s, causal, mask, drop); }, qkv, r);
      const std::vector<double> an = attn_backward_ref(qkv, to_f64(r), s, causal, mask, drop);
      double e = 0;
      for (size_t i = 0; i < fd.size(); ++i) e = std::max(e, std::fabs(fd[i] - an[i]));
      EXPECT_LT(e, 1e-7) << "causal " << causal << " p " << p;
    }
}

}  // namespace
}  // namespace clipkit::cuda

namespace clipkit::cuda {
namespace {

// Which problems CudaBackend hands to the fused inference attention (the rest keep the batched-GEMM path).
TEST(CudaHost, FusedAttentionTakesHeadSizesUpTo128AndAlignedTensors) {
  alignas(16) static uint16_t buf[64];
  for (int64_t D : {16, 32, 48, 64, 80, 96, 112, 128}) {
    EXPECT_TRUE(fused_attention_fits({2, 50, 12, D}, buf, buf)) << D;
    EXPECT_GT(fused_attention_smem_bytes(D), 0u);
    EXPECT_LE(fused_attention_smem_bytes(D), size_t{227} << 10) << "over sm_90's shared memory per block";
  }
  for (int64_t D : {0, 8, 24, 60, 144, 256}) EXPECT_FALSE(fused_attention_fits({2, 50, 12, D}, buf, buf)) << D;
  for (int64_t L : {1, 7, 77, 257, 514, 4096}) EXPECT_TRUE(fused_attention_fits({1, L, 1, 64}, buf, buf)) << L;
  EXPECT_FALSE(fused_attention_fits({0, 50, 12, 64}, buf, buf));
  EXPECT_FALSE(fused_attention_fits({1, 0, 12, 64}, buf, buf));
  EXPECT_FALSE(fused_attention_fits({2, 50, 12, 64}, buf + 1, buf));
  EXPECT_FALSE(fused_attention_fits({2, 50, 12, 64}, buf, buf + 4));
}

}  // namespace
}  // namespace clipkit::cuda

namespace clipkit::cuda {
namespace {

TEST(CudaHost, HostRangesTellStagingMemory) {
  std::vector<char> a(100), b(50);
  HostRanges r;
  r.add(a.data(), a.size());
  r.add(b.data(), b.size());
  EXPECT_TRUE(r.contains(a.data(), 100));
  EXPECT_TRUE(r.contains(a.data() + 40, 60));
  EXPECT_FALSE(r.contains(a.data() + 40, 61));
  EXPECT_TRUE(r.contains(b.data() + 49, 1));
  int elsewhere = 0;
  EXPECT_FALSE(r.contains(&elsewhere, sizeof elsewhere));
  r.remove(a.data());
  EXPECT_FALSE(r.contains(a.data(), 1));
  EXPECT_TRUE(r.contains(b.data(), 50));
}

// The recorded pass's host traffic, and what a replay may and may not differ in.
TEST(CudaHost, CaptureLogChecksReplaysAgainstTheRecording) {
  CaptureLog log({std::malloc, std::free});
  std::vector<float> staging(8, 1.0f);
  std::vector<int32_t> ids = {3, 1, 2};
  char dev[256];  // stands for device addresses
  EXPECT_EQ(log.record_input(staging.data(), dev, 32, /*live=*/true), staging.data());
  const void* snap = log.record_input(ids.data(), dev + 64, 12, /*live=*/false);
  ASSERT_NE(snap, static_cast<const void*>(ids.data()));
  ids[0] = 7;  // the snapshot keeps the recorded values
  EXPECT_EQ(static_cast<const int32_t*>(snap)[0], 3);
  void* copy = log.record_download(dev + 128, 16);
  std::memset(copy, 0x3f, 16);
  EXPECT_EQ(log.inputs(), 2u);
  EXPECT_EQ(log.downloads(), 1u);

  auto replay = [&](const void* live, const void* dst, const std::vector<int32_t>& idx, const void* src,
                    size_t dbytes) {
    log.begin_replay();
    log.check_input(live, dst, 32);
    log.advance_input();
    log.check_input(idx.data(), dev + 64, 12);
    log.advance_input();
    const void* c = log.check_download(src, dbytes);
    log.advance_download();
    log.end_replay();
    return c;
  };
  std::vector<float> other(8);
  EXPECT_EQ(replay(staging.data(), dev, {3, 1, 2}, dev + 128, 16), copy);  // new staging contents are fine
  EXPECT_THROW(replay(other.data(), dev, {3, 1, 2}, dev + 128, 16), ReplayMismatch);  // another live buffer
  EXPECT_THROW(replay(staging.data(), dev + 32, {3, 1, 2}, dev + 128, 16), ReplayMismatch);  // the arena moved
  EXPECT_THROW(replay(staging.data(), dev, {3, 1, 9}, dev + 128, 16), ReplayMismatch);  // other index values
  EXPECT_THROW(replay(staging.data(), dev, {3, 1, 2}, dev + 144, 16), ReplayMismatch);  // another result
  EXPECT_THROW(replay(staging.data(), dev, {3, 1, 2}, dev + 128, 8), ReplayMismatch);
  log.begin_replay();  // a pass that stops short, or does more
  log.check_input(staging.data(), dev, 32);
  log.advance_input();
  EXPECT_THROW(log.end_replay(), ReplayMismatch);
  log.begin_replay();
  for (int i = 0; i < 2; ++i) log.advance_input();
  EXPECT_THROW(log.check_input(staging.data(), dev, 32), ReplayMismatch);
}

}  // namespace
}  // namespace clipkit::cuda
