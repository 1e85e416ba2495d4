#include "backend/cuda/layernorm.h"
#include "cuda_test_util.h"
#include "backend/cpu/layernorm.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaLayerNorm : public CudaTest {};

TEST_F(CudaLayerNorm, ForwardAndBackwardMatchTheCpuOp) {
  for (int64_t C : {768, 50, 1}) {
    const int64_t M = 301;  // three row chunks of the parameter gradients
    SCOPED_TRACE(::testing::Message() << "C " << C);
    const float eps = 1e-5f;
    std::vector<float> x = random_vec(static_cast<size_t>(M * C), 31, 2.0f, 0.5f);
    for (int64_t c = 0; c < C; ++c) x[c] += 30.0f;  // a row with a large mean
    const std::vector<float> g = random_vec(C, 32, 0.2f, 1.0f), b = random_vec(C, 33), dy = random_vec(M * C, 34);
    std::vector<float> y_ref(M * C), mean_ref(M), rstd_ref(M);
    backend::cpu::layernorm_forward(x.data(), g.data(), b.data(), y_ref.data(), M, C, eps, mean_ref.data(), rstd_ref.data());
    auto dx_in = up(x);
    auto dg = up(g);
    auto db = up(b);
    auto y = poisoned<float>(M * C);
    auto mean = poisoned<float>(M);
    auto rstd = poisoned<float>(M);
    layernorm_forward(dx_in.p(), dg.p(), db.p(), y.p(), M, C, eps, mean.p(), rstd.p(), ctx());
    EXPECT_REL_ERR("y", down(y), y_ref, kF32Tol);
    EXPECT_REL_ERR("mean", down(mean), mean_ref, kF32Tol);
    EXPECT_REL_ERR("rstd", down(rstd), rstd_ref, kF32Tol);

    // bf16 output: exactly the rounding of the fp32 output it writes beside it
    auto yb = poisoned<uint16_t>(M * C);
    auto y32 = poisoned<float>(M * C);
    layernorm_forward_bf16(dx_in.p(), dg.p(), db.p(), yb.p(), M, C, eps, nullptr, nullptr, ctx(), y32.p());
    const std::vector<float> y32h = down(y32);
    EXPECT_EQ(down(yb), to_bf16_host(y32h));
    EXPECT_REL_ERR("y (with bf16)", y32h, y_ref, kF32Tol);

    // backward: dx overwritten, dgamma / dbeta accumulated onto what they hold
    const std::vector<float> dg0 = random_vec(C, 35), db0 = random_vec(C, 36);
    std::vector<float> dx_ref(M * C), dg_ref(dg0), db_ref(db0);
    backend::cpu::layernorm_backward(dy.data(), x.data(), g.data(), mean_ref.data(), rstd_ref.data(), dx_ref.data(),
                            dg_ref.data(), db_ref.data(), M, C);
    auto ddy = up(dy);
    auto dx = poisoned<float>(M * C);
    auto dgam = up(dg0);
    auto dbet = up(db0);
    layernorm_backward(ddy.p(), dx_in.p(), dg.p(), mean.p(), rstd.p(), dx.p(), dgam.p(), dbet.p(), M, C, ctx());
    EXPECT_REL_ERR("dx", down(dx), dx_ref, kF32Tol);  // (C = 1: exactly 0 on both)
    EXPECT_REL_ERR("dgamma", down(dgam), dg_ref, 1e-5);
    EXPECT_REL_ERR("dbeta", down(dbet), db_ref, 1e-5);
  }
}

}  // namespace
}  // namespace clipkit::cuda
