// cuBLASLt GEMMs against float64 products, in the three ways a product can run: cuBLASLt's fused
// epilogues, every epilogue as a separate kernel (Context::unfused_epilogues), and cuBLAS's gemmEx
// (the problems cuBLASLt declines), on odd shapes with padded leading dimensions.
#include "backend/backend.h"
#include "backend/cpu/activation.h"
#include "backend/cuda/blas.h"
#include "backend/cuda/gemm.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "reference.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

enum class Path { Fused, Unfused, Cublas };
const char* path_name(Path p) { return p == Path::Fused ? "Fused" : p == Path::Unfused ? "Unfused" : "Cublas"; }
void PrintTo(Path p, std::ostream* os) { *os << path_name(p); }

class CudaGemm : public CudaTest, public ::testing::WithParamInterface<Path> {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    ctx().unfused_epilogues = GetParam() != Path::Fused;
    ctx().blas().lt_enabled = GetParam() != Path::Cublas;
  }
};

// the rows x N block of a [rows, ld] matrix
template <typename T>
std::vector<double> block(const std::vector<T>& m, int64_t rows, int64_t N, int64_t ld) {
  std::vector<double> out;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < N; ++j) out.push_back(static_cast<double>(m[i * ld + j]));
  return out;
}

TEST_P(CudaGemm, AllTransposesFp32AndBf16) {
  const int64_t M = 37, N = 53, K = 29;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "op " << (ta ? "T" : "N") << (tb ? "T" : "N"));
      const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
      const std::vector<float> A = random_vec(static_cast<size_t>((ta ? K : M) * lda), 10 + ta);
      const std::vector<float> B = random_vec(static_cast<size_t>((tb ? N : K) * ldb), 20 + tb);
      const std::vector<double> ref = block(gemm_ref(ta, tb, M, N, K, A, lda, B, ldb, ldc), M, N, ldc);
      auto dA = up(A);
      auto dB = up(B);
      auto C = poisoned<float>(M * ldc);
      gemm(ctx(), ta, tb, M, N, K, dA.p(), lda, dB.p(), ldb, DType::F32, C.p(), ldc, DType::F32);
      EXPECT_REL_ERR("fp32", block(down(C), M, N, ldc), ref, kF32Tol);

      // bf16 operands: exact products of the rounded values, accumulated in fp32
      const std::vector<uint16_t> Ab = to_bf16_host(A), Bb = to_bf16_host(B);
      const std::vector<double> refb =
          block(gemm_ref(ta, tb, M, N, K, from_bf16_host(Ab), lda, from_bf16_host(Bb), ldb, ldc), M, N, ldc);
      auto dAb = up(Ab);
      auto dBb = up(Bb);
      auto Cb = poisoned<float>(M * ldc);
      gemm(ctx(), ta, tb, M, N, K, dAb.p(), lda, dBb.p(), ldb, DType::BF16, Cb.p(), ldc, DType::F32);
      EXPECT_REL_ERR("bf16 -> fp32", block(down(Cb), M, N, ldc), refb, kF32Tol);
      auto Cbb = poisoned<uint16_t>(M * ldc);
      gemm(ctx(), ta, tb, M, N, K, dAb.p(), lda, dBb.p(), ldb, DType::BF16, Cbb.p(), ldc, DType::BF16);
      EXPECT_REL_ERR("bf16 -> bf16", block(from_bf16_host(down(Cbb)), M, N, ldc), refb, 8e-3);
    }
}

// y = act(x W^T + b) with the preact saved, and the residual add, against the CPU activations
TEST_P(CudaGemm, EpiloguesBiasActivationPreactResidual) {
  const int64_t M = 41, N = 67, K = 45;
  const std::vector<float> x = random_vec(static_cast<size_t>(M * K), 1), W = random_vec(static_cast<size_t>(N * K), 2, 0.2f);
  const std::vector<float> bias = random_vec(static_cast<size_t>(N), 3), y0 = random_vec(static_cast<size_t>(M * N), 4);
  std::vector<double> pre = gemm_ref(false, true, M, N, K, x, K, W, K, N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) pre[i * N + j] += bias[j];
  std::vector<float> pre_f(pre.begin(), pre.end());
  auto dx = up(x);
  auto dW = up(W);
  auto db = up(bias);
  for (backend::Act a : {backend::Act::QuickGelu, backend::Act::Gelu, backend::Act::GeluNew, backend::Act::Relu})
    for (bool save : {false, true})
      for (DType out : {DType::F32, DType::BF16}) {
        SCOPED_TRACE(::testing::Message() << backend::act_name(a) << (save ? " +preact " : " ") << dtype_name(out));
        std::vector<float> want(pre_f.size());
        backend::cpu::act_forward(pre_f.data(), want.data(), M * N, a);
        Epilogue e;
        e.bias = db.p();
        e.activate = true;
        e.act = a;
        auto preact = poisoned<float>(M * N);
        if (save) e.preact = preact.p();
        if (out == DType::F32) {
          auto y = poisoned<float>(M * N);
          gemm(ctx(), false, true, M, N, K, dx.p(), K, dW.p(), K, DType::F32, y.p(), N, DType::F32, e);
          EXPECT_REL_ERR("act(x W^T + b)", down(y), want, kF32Tol);
        } else {
          auto y = poisoned<uint16_t>(M * N);
          gemm(ctx(), false, true, M, N, K, dx.p(), K, dW.p(), K, DType::F32, y.p(), N, DType::BF16, e);
          EXPECT_REL_ERR("act(x W^T + b) as bf16", from_bf16_host(down(y)), want, 8e-3);
        }
        if (save) EXPECT_REL_ERR("preact", down(preact), pre, kF32Tol);
      }
  // residual: y = y0 + x W^T + b, in fp32 and into a bf16 y
  std::vector<double> res(pre);
  for (size_t i = 0; i < res.size(); ++i) res[i] += y0[i];
  Epilogue e;
  e.bias = db.p();
  e.accumulate = true;
  auto y = up(y0);
  gemm(ctx(), false, true, M, N, K, dx.p(), K, dW.p(), K, DType::F32, y.p(), N, DType::F32, e);
  EXPECT_REL_ERR("y0 + x W^T + b", down(y), res, kF32Tol);
  const std::vector<uint16_t> y0b = to_bf16_host(y0);
  std::vector<double> resb(pre);
  for (size_t i = 0; i < resb.size(); ++i) resb[i] += bf16_to_f32(y0b[i]);
  auto yb = up(y0b);
  gemm(ctx(), false, true, M, N, K, dx.p(), K, dW.p(), K, DType::F32, yb.p(), N, DType::BF16, e);
  EXPECT_REL_ERR("bf16 y0 + x W^T + b", from_bf16_host(down(yb)), resb, 8e-3);
  // an unaligned bias (cuBLASLt wants 16 bytes): the same result
  std::vector<float> shifted(1, 0.0f);
  shifted.insert(shifted.end(), bias.begin(), bias.end());
  auto dbs = up(shifted);
  Epilogue eb;
  eb.bias = dbs.p() + 1;
  auto yu = poisoned<float>(M * N);
  gemm(ctx(), false, true, M, N, K, dx.p(), K, dW.p(), K, DType::F32, yu.p(), N, DType::F32, eb);
  EXPECT_REL_ERR("x W^T + b, bias at 4 bytes", down(yu), pre, kF32Tol);
}

TEST_P(CudaGemm, DenseBackwardWithBiasGradientFp32AndBf16) {
  const int64_t M = 133, N = 71, K = 38;  // M > 128: the bias gradient's sums span two row chunks
  const std::vector<float> x = random_vec(static_cast<size_t>(M * K), 5), W = random_vec(static_cast<size_t>(N * K), 6);
  const std::vector<float> dy = random_vec(static_cast<size_t>(M * N), 7);
  const std::vector<float> dx0 = random_vec(static_cast<size_t>(M * K), 8), dW0 = random_vec(static_cast<size_t>(N * K), 9);
  const std::vector<float> db0 = random_vec(static_cast<size_t>(N), 10);
  const std::vector<double> dx_ref = gemm_ref(false, false, M, K, N, dy, N, W, K, K);
  const std::vector<double> dW_ref = gemm_ref(true, false, N, K, M, dy, N, x, K, K);
  std::vector<double> db_ref(static_cast<size_t>(N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) db_ref[j] += dy[i * N + j];
  auto plus = [](std::vector<double> a, const std::vector<float>& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  };
  auto dxv = up(x);
  auto dWv = up(W);
  auto ddy = up(dy);
  for (bool acc : {false, true}) {
    SCOPED_TRACE(acc ? "accumulating" : "first write");
    auto gx = acc ? up(dx0) : poisoned<float>(M * K);
    auto gW = acc ? up(dW0) : poisoned<float>(N * K);
    auto gb = acc ? up(db0) : poisoned<float>(N);
    dense_backward(dxv.p(), dWv.p(), ddy.p(), M, N, K, gx.p(), gW.p(), gb.p(), acc, acc, ctx());
    EXPECT_REL_ERR("dx", down(gx), acc ? plus(dx_ref, dx0) : dx_ref, kF32Tol);
    EXPECT_REL_ERR("dW", down(gW), acc ? plus(dW_ref, dW0) : dW_ref, kF32Tol);
    EXPECT_REL_ERR("db", down(gb), acc ? plus(db_ref, db0) : db_ref, kF32Tol);
  }
  // bf16: operands rounded (dy by the call itself), db from fp32 dy
  const std::vector<uint16_t> xb = to_bf16_host(x), Wb = to_bf16_host(W), dyb = to_bf16_host(dy);
  const std::vector<double> dxb_ref = gemm_ref(false, false, M, K, N, from_bf16_host(dyb), N, from_bf16_host(Wb), K, K);
  const std::vector<double> dWb_ref = gemm_ref(true, false, N, K, M, from_bf16_host(dyb), N, from_bf16_host(xb), K, K);
  auto dxb = up(xb);
  auto dWb = up(Wb);
  auto gx = poisoned<float>(M * K);
  auto gW = poisoned<float>(N * K);
  auto gb = poisoned<float>(N);
  dense_backward_bf16(dxb.p(), dWb.p(), ddy.p(), M, N, K, gx.p(), gW.p(), gb.p(), false, false, ctx());
  EXPECT_REL_ERR("bf16 dx", down(gx), dxb_ref, kF32Tol);
  EXPECT_REL_ERR("bf16 dW", down(gW), dWb_ref, kF32Tol);
  EXPECT_REL_ERR("bf16 db (fp32 dy)", down(gb), db_ref, kF32Tol);
  auto ddyb = up(dyb);
  auto gW2 = poisoned<float>(N * K);
  weight_grad_bf16(M, N, K, ddyb.p(), dxb.p(), gW2.p(), ctx());
  EXPECT_REL_ERR("weight_grad_bf16", down(gW2), dWb_ref, kF32Tol);
}

TEST_P(CudaGemm, TheCpuSignatures) {
  const int64_t M = 19, N = 23, K = 31;
  const std::vector<float> A = random_vec(static_cast<size_t>(M * K), 11), B = random_vec(static_cast<size_t>(K * N), 12);
  const std::vector<float> C0 = random_vec(static_cast<size_t>(M * N), 13), bias = random_vec(static_cast<size_t>(N), 14);
  const std::vector<double> ab = gemm_ref(false, false, M, N, K, A, K, B, N, N);
  auto dA = up(A);
  auto dB = up(B);
  auto dbias = up(bias);
  std::vector<double> want(ab);
  for (size_t i = 0; i < want.size(); ++i) want[i] += C0[i];
  auto C = up(C0);
  gemm(backend::Precision::F32, false, false, M, N, K, dA.p(), K, dB.p(), N, 1.0f, C.p(), N, ctx());
  EXPECT_REL_ERR("gemm fp32 beta 1", down(C), want, kF32Tol);
  auto Cb = poisoned<float>(M * N);
  gemm(backend::Precision::BF16, false, false, M, N, K, dA.p(), K, dB.p(), N, 0.0f, Cb.p(), N, ctx());
  EXPECT_REL_ERR("gemm bf16", down(Cb), ab, 1e-2);
  // matmul_bf16 with bias and beta 1; matmul_bf16_to_bf16
  const std::vector<uint16_t> Ab = to_bf16_host(A), Bb = to_bf16_host(B);
  std::vector<double> wantb = gemm_ref(false, false, M, N, K, from_bf16_host(Ab), K, from_bf16_host(Bb), N, N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) wantb[i * N + j] += bias[j];
  auto dAb = up(Ab);
  auto dBb = up(Bb);
  auto C1 = poisoned<uint16_t>(M * N);
  matmul_bf16_to_bf16(false, false, M, N, K, dAb.p(), K, dBb.p(), N, C1.p(), N, dbias.p(), ctx());
  EXPECT_REL_ERR("matmul_bf16_to_bf16 + bias", from_bf16_host(down(C1)), wantb, 8e-3);
  for (size_t i = 0; i < wantb.size(); ++i) wantb[i] += C0[i];
  auto C2 = up(C0);
  matmul_bf16(false, false, M, N, K, dAb.p(), K, dBb.p(), N, 1.0f, C2.p(), N, dbias.p(), ctx());
  EXPECT_REL_ERR("matmul_bf16 + bias, beta 1", down(C2), wantb, kF32Tol);
  // dense_forward = x W^T + b
  const std::vector<float> W = random_vec(static_cast<size_t>(N * K), 15);
  std::vector<double> yref = gemm_ref(false, true, M, N, K, A, K, W, K, N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) yref[i * N + j] += bias[j];
  auto dW = up(W);
  auto y = poisoned<float>(M * N);
  dense_forward(dA.p(), dW.p(), dbias.p(), M, N, K, y.p(), ctx());
  EXPECT_REL_ERR("dense_forward", down(y), yref, kF32Tol);
  auto Wb = up(to_bf16_host(W));
  auto yb = poisoned<uint16_t>(M * N);
  auto y32 = poisoned<float>(M * N);
  dense_forward_bf16(dAb.p(), Wb.p(), dbias.p(), M, N, K, y32.p(), ctx());
  dense_forward_bf16_out(dAb.p(), Wb.p(), dbias.p(), M, N, K, yb.p(), ctx());
  EXPECT_REL_ERR("dense_forward_bf16", down(y32), yref, 1e-2);
  EXPECT_REL_ERR("dense_forward_bf16_out", from_bf16_host(down(yb)), yref, 1e-2);
}

TEST_P(CudaGemm, BatchedEmptyAndBadArguments) {
  const int64_t M = 9, N = 11, K = 13, batch = 5;
  const std::vector<float> A = random_vec(static_cast<size_t>(batch * M * K), 16), B = random_vec(static_cast<size_t>(batch * K * N), 17);
  std::vector<double> ref;
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<float> Ai(A.begin() + b * M * K, A.begin() + (b + 1) * M * K);
    const std::vector<float> Bi(B.begin() + b * K * N, B.begin() + (b + 1) * K * N);
    const std::vector<double> c = gemm_ref(false, false, M, N, K, Ai, K, Bi, N, N);
    ref.insert(ref.end(), c.begin(), c.end());
  }
  auto dA = up(A);
  auto dB = up(B);
  auto C = poisoned<float>(batch * M * N);
  gemm(ctx(), false, false, M, N, K, dA.p(), K, dB.p(), N, DType::F32, C.p(), N, DType::F32, {},
       {batch, M * K, K * N, M * N});
  EXPECT_REL_ERR("batched", down(C), ref, kF32Tol);
  // K = 0: the epilogue of a zero product
  const std::vector<float> bias = random_vec(static_cast<size_t>(N), 18);
  auto dbias = up(bias);
  auto C0 = poisoned<float>(M * N);
  Epilogue e;
  e.bias = dbias.p();
  gemm(ctx(), false, false, M, N, 0, dA.p(), 1, dB.p(), N, DType::F32, C0.p(), N, DType::F32, e);
  std::vector<double> bias_rows;
  for (int64_t i = 0; i < M; ++i) bias_rows.insert(bias_rows.end(), bias.begin(), bias.end());
  EXPECT_REL_ERR("K = 0", down(C0), bias_rows, 0.0);
  // the plans are cached (cuBLASLt's): the same problem again adds none
  const size_t plans = ctx().blas().cached_plans();
  gemm(ctx(), false, false, M, N, K, dA.p(), K, dB.p(), N, DType::F32, C.p(), N, DType::F32, {},
       {batch, M * K, K * N, M * N});
  EXPECT_EQ(ctx().blas().cached_plans(), plans);
  EXPECT_THROW(gemm(ctx(), false, false, M, N, K, dA.p(), K - 1, dB.p(), N, DType::F32, C.p(), N, DType::F32), Error);
  Epilogue bad;
  bad.activate = bad.accumulate = true;
  EXPECT_THROW(gemm(ctx(), false, false, M, N, K, dA.p(), K, dB.p(), N, DType::F32, C.p(), N, DType::F32, bad), Error);
  EXPECT_THROW(gemm(ctx(), false, false, M, N, K, dA.p(), K, dB.p(), N, DType::I32, C.p(), N, DType::F32), Error);
  ctx().sync();  // nothing broke the stream
}

INSTANTIATE_TEST_SUITE_P(Paths, CudaGemm, ::testing::Values(Path::Fused, Path::Unfused, Path::Cublas),
                         [](const auto& info) { return std::string(path_name(info.param)); });

}  // namespace
}  // namespace clipkit::cuda
