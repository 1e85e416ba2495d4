#include "backend/cuda/activation.h"
#include "cuda_test_util.h"
#include "ops/activation.h"
#include "ops/tanh.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaActivation : public CudaTest {};

TEST_F(CudaActivation, ForwardAndBackwardMatchTheCpuOps) {
  const int64_t n = 100003;
  const std::vector<float> x = random_vec(n, 2, 3.0f), dy = random_vec(n, 3);
  auto dx_in = up(x);
  auto ddy = up(dy);
  for (ops::Act a : {ops::Act::QuickGelu, ops::Act::Gelu, ops::Act::GeluNew, ops::Act::Relu}) {
    SCOPED_TRACE(ops::act_name(a));
    std::vector<float> y_ref(n), dx_ref(n);
    ops::act_forward(x.data(), y_ref.data(), n, a);
    ops::act_backward(x.data(), dy.data(), dx_ref.data(), n, a);

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

TEST_F(CudaActivation, TanhMatchesTheCpuOp) {
  const int64_t n = 5001;
  const std::vector<float> x = random_vec(n, 4, 2.0f), dy = random_vec(n, 5);
  std::vector<float> y_ref(n), dx_ref(n);
  ops::tanh_forward(x.data(), y_ref.data(), n);
  ops::tanh_backward(y_ref.data(), dy.data(), dx_ref.data(), n);
  auto dx_in = up(x);
  auto y = poisoned<float>(n);
  tanh_forward(dx_in.p(), y.p(), n, ctx());
  EXPECT_REL_ERR("tanh forward", down(y), y_ref, kF32Tol);
  auto dyv = up(dy);
  auto dx = poisoned<float>(n);
  tanh_backward(y.p(), dyv.p(), dx.p(), n, ctx());
  EXPECT_REL_ERR("tanh backward", down(dx), dx_ref, kF32Tol);
}

}  // namespace
}  // namespace clipkit::cuda
