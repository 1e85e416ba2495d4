#include "backend/cpu/optimizer.h"
#include "backend/cuda/optimizer.h"
#include "cuda_test_util.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaAdamW : public CudaTest {};

backend::Tensor f32(float* p, int64_t n) { return backend::Tensor(DType::F32, {n}, p, nullptr); }

// Host and device copies of a few tensors of odd sizes (one over a chunk, one exactly a chunk).
TEST_F(CudaAdamW, StepIsBitIdenticalToTheCpuAndTheNormMatches) {
  const std::vector<int64_t> sizes = {kAdamWChunk + 17, 3, kAdamWChunk, 1000};
  std::vector<std::vector<float>> w, g, m, v;
  std::vector<DeviceVec<float>> dw, dg, dm, dv;
  std::vector<backend::OptimizerSlot> host, dev;
  std::vector<backend::Tensor> host_g, dev_g;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = static_cast<size_t>(sizes[i]);
    w.push_back(random_vec(n, 80 + i));
    g.push_back(random_vec(n, 90 + i, 0.01f));
    m.emplace_back(n, 0.0f);
    v.emplace_back(n, 0.0f);
    dw.push_back(up(w[i]));
    dg.push_back(up(g[i]));
    dm.push_back(up(m[i]));
    dv.push_back(up(v[i]));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    const bool decay = i != 1;
    host.push_back({f32(w[i].data(), sizes[i]), f32(g[i].data(), sizes[i]), f32(m[i].data(), sizes[i]),
                    f32(v[i].data(), sizes[i]), decay});
    dev.push_back({f32(dw[i].p(), sizes[i]), f32(dg[i].p(), sizes[i]), f32(dm[i].p(), sizes[i]),
                   f32(dv[i].p(), sizes[i]), decay});
    host_g.push_back(host.back().g);
    dev_g.push_back(dev.back().g);
  }
  auto total = poisoned<double>(1);
  backend::AdamWStep st;
  st.weight_decay = 0.1;
  for (int step = 0; step < 3; ++step) {
    st.lr = 1e-3 * (step + 1);
    st.grad_scale = step == 1 ? 0.37 : 1.0;
    st.t = step + 1;
    grad_norm(dev_g, total.p(), ctx());
    const double cpu_norm = backend::cpu::grad_norm(host_g);
    EXPECT_NEAR(down(total)[0], cpu_norm, 1e-12 * cpu_norm);
    backend::cpu::adamw(host, st);
    adamw(dev, st, ctx());
    for (size_t i = 0; i < sizes.size(); ++i) {
      ASSERT_EQ(down(dw[i]), w[i]) << "step " << step << " weights of " << i;
      ASSERT_EQ(down(dg[i]), g[i]) << "step " << step << " (scaled) gradient of " << i;
      ASSERT_EQ(down(dm[i]), m[i]) << "step " << step << " exp_avg of " << i;
      ASSERT_EQ(down(dv[i]), v[i]) << "step " << step << " exp_avg_sq of " << i;
    }
  }
  // clipping on the device from the device norm: the CPU's clip coefficient, then step
  for (double max_norm : {1e-3, 1e9}) {
    grad_norm(dev_g, total.p(), ctx());
    const double cpu_total = backend::cpu::grad_norm(host_g);
    st.lr = 1e-3;
    ++st.t;
    st.grad_scale = std::min(1.0, max_norm / (cpu_total + 1e-6));
    backend::cpu::adamw(host, st);
    adamw_clipped(dev, st, total.p(), max_norm, ctx());
    for (size_t i = 0; i < sizes.size(); ++i)
      EXPECT_REL_ERR("weights after a clipped step", down(dw[i]), w[i], 1e-6);
  }
}

}  // namespace
}  // namespace clipkit::cuda
