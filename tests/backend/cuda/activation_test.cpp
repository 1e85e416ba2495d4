#include "backend/cuda/activation.h"
#include "cuda_test_util.h"
#include "backend/backend.h"
#include "backend/cpu/activation.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaActivation : public CudaTest {};

TEST_F(CudaActivation, ForwardAndBackwardMatchTheCpuOps) {
  const int64_t n = 100003;
  const std::vector<float> x = random_vec(n, 2, 3.0f), dy = random_vec(n, 3);
  auto dx_in = up(x);
  auto ddy = up(dy);
  for (backend::Act a : {backend::Act::None, backend::Act::QuickGelu, backend::Act::Gelu, backend::Act::GeluNew,
                         backend::Act::Relu, backend::Act::Tanh}) {
    SCOPED_TRACE(backend::act_name(a));
    std::vector<float> y_ref(n), dx_ref(n);
    backend::cpu::act_forward(x.data(), y_ref.data(), n, a);
    backend::cpu::act_backward(x.data(), dy.data(), dx_ref.data(), n, a);

    auto y = poisoned<float>(n);
    act_forward(dx_in.p(), y.p(), n, a, ctx());
    EXPECT_REL_ERR("forward", down(y), y_ref, kF32Tol);

    auto yb = poisoned<uint16_t>(n);
    act_forward_bf16(dx_in.p(), yb.p(), n, a, ctx());
    EXPECT_REL_ERR("forward bf16", from_bf16_host(down(yb)), y_ref, 1e-2);

    auto dx = poisoned<float>(n);
    act_backward(dx_in.p(), ddy.p(), dx.p(), n, a, ctx());
    EXPECT_REL_ERR("backward", down(dx), dx_ref, kF32Tol);

    auto inplace = up(x);  // y = act(x) in place
    act_forward(inplace.p(), inplace.p(), n, a, ctx());
    EXPECT_REL_ERR("forward in place", down(inplace), y_ref, kF32Tol);
  }
}

}  // namespace
}  // namespace clipkit::cuda
