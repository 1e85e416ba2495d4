#include "backend/cuda/optimizer.h"
#include "cuda_test_util.h"
#include "train/optimizer.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaAdamW : public CudaTest {};

// Host and device copies of a few parameters of odd sizes (one over a chunk, one exactly a chunk).
struct Params {
  std::vector<std::vector<float>> w, g;
  std::vector<DeviceVec<float>> dw, dg;
  std::vector<train::Param> host, dev;
};

TEST_F(CudaAdamW, StepIsBitIdenticalToTheCpuAndTheNormMatches) {
  const std::vector<int64_t> sizes = {AdamW::kChunk + 17, 3, AdamW::kChunk, 1000};
  Params ps;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ps.w.push_back(random_vec(static_cast<size_t>(sizes[i]), 80 + i));
    ps.g.push_back(random_vec(static_cast<size_t>(sizes[i]), 90 + i, 0.01f));
    ps.dw.push_back(up(ps.w[i]));
    ps.dg.push_back(up(ps.g[i]));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::string name = "p" + std::to_string(i);
    const bool decay = i != 1;
    ps.host.push_back({name, ps.w[i].data(), ps.g[i].data(), sizes[i], decay});
    ps.dev.push_back({name, ps.dw[i].p(), ps.dg[i].p(), sizes[i], decay});
  }
  train::AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  train::AdamW cpu(ps.host, cfg);
  AdamW gpu(ps.dev, cfg, ctx());
  auto total = poisoned<double>(1);
  for (int step = 0; step < 3; ++step) {
    const double lr = 1e-3 * (step + 1), scale = step == 1 ? 0.37 : 1.0;
    gpu.grad_norm(total.p(), ctx());
    const double cpu_norm = train::grad_norm(ps.host);
    EXPECT_NEAR(down(total)[0], cpu_norm, 1e-12 * cpu_norm);
    cpu.step(lr, scale);
    gpu.step(lr, scale, ctx());
    for (size_t i = 0; i < sizes.size(); ++i) {
      ASSERT_EQ(down(ps.dw[i]), ps.w[i]) << "step " << step << " weights of " << i;
      ASSERT_EQ(down(ps.dg[i]), ps.g[i]) << "step " << step << " (scaled) gradient of " << i;
      std::vector<float> m(sizes[i]), v(sizes[i]);
      copy_to_host(m.data(), gpu.exp_avg(i), sizeof(float) * m.size(), ctx().stream());
      copy_to_host(v.data(), gpu.exp_avg_sq(i), sizeof(float) * v.size(), ctx().stream());
      ctx().sync();
      ASSERT_EQ(m, cpu.exp_avg(i)) << "step " << step << " exp_avg of " << i;
      ASSERT_EQ(v, cpu.exp_avg_sq(i)) << "step " << step << " exp_avg_sq of " << i;
    }
  }
  EXPECT_EQ(gpu.steps(), 3);
  // clipping on the device from the device norm: the CPU's clip_grad_norm, then step
  for (double max_norm : {1e-3, 1e9}) {
    gpu.grad_norm(total.p(), ctx());
    const double cpu_total = train::grad_norm(ps.host);
    cpu.step(1e-3, train::clip_coefficient(cpu_total, max_norm));
    gpu.step_clipped(1e-3, total.p(), max_norm, ctx());
    for (size_t i = 0; i < sizes.size(); ++i)
      EXPECT_REL_ERR("weights after a clipped step", down(ps.dw[i]), ps.w[i], 1e-6);
  }
}

}  // namespace
}  // namespace clipkit::cuda
