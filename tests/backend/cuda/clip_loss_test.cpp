#include "backend/cuda/clip_loss.h"
#include "cuda_test_util.h"
#include "backend/backend.h"
#include "backend/cpu/clip_loss.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaClipLoss : public CudaTest {};

TEST_F(CudaClipLoss, LossAndGradientsMatchTheCpuInDouble) {
  for (int64_t B : {1, 67, 300}) {
    const int64_t P = 40;
    SCOPED_TRACE(::testing::Message() << "B " << B);
    const std::vector<float> img = random_vec(static_cast<size_t>(B * P), 71, 2.0f);
    std::vector<float> txt = random_vec(static_cast<size_t>(B * P), 72);
    for (int64_t i = 0; i < B * P; ++i) txt[i] += 0.5f * img[i];  // matching pairs are closer
    const float s = 2.6592f;
    std::vector<float> gi(B * P), gt(B * P);
    const backend::ClipLossResult ref = backend::cpu::clip_loss(img.data(), txt.data(), B, P, s, gi.data(), gt.data());
    auto di = up(img);
    auto dt = up(txt);
    auto ds = up(std::vector<float>{s});
    auto gdi = poisoned<float>(B * P);
    auto gdt = poisoned<float>(B * P);
    auto res = poisoned<double>(2);
    clip_loss(di.p(), dt.p(), B, P, ds.p(), gdi.p(), gdt.p(), res.p(), ctx());
    const backend::ClipLossResult got = read_clip_loss(res.p(), ctx());
    EXPECT_NEAR(got.loss, ref.loss, 1e-12 * std::max(1.0, std::fabs(ref.loss)));
    EXPECT_NEAR(got.dlogit_scale, ref.dlogit_scale, 1e-10 * std::max(1.0, std::fabs(ref.dlogit_scale)));
    EXPECT_REL_ERR("dimg", down(gdi), gi, 1e-6);
    EXPECT_REL_ERR("dtxt", down(gdt), gt, 1e-6);
    clip_loss(di.p(), dt.p(), B, P, ds.p(), nullptr, nullptr, res.p(), ctx());  // loss only
    EXPECT_NEAR(read_clip_loss(res.p(), ctx()).loss, ref.loss, 1e-12 * std::max(1.0, std::fabs(ref.loss)));
  }
}

}  // namespace
}  // namespace clipkit::cuda
