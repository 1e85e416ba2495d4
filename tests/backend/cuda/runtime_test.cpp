#include <cstring>

#include "backend/cuda/arena.h"
#include "backend/cuda/context.h"
#include "backend/cuda/memory.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaRuntime : public CudaTest {};

TEST_F(CudaRuntime, DeviceInfoBuffersAndArena) {
  const DeviceInfo d = device_info(0);
  std::printf("  device 0: %s, compute capability %d.%d, %d SMs, %.1f GiB, driver %d, runtime %d\n", d.name.c_str(),
              d.cc_major, d.cc_minor, d.multiprocessors, d.memory_bytes / 1073741824.0, d.driver_version,
              d.runtime_version);
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.multiprocessors, 0);
  // pinned host -> device -> device -> pinned host
  const size_t n = 1 << 20;
  PinnedBuffer a(n), b(n);
  for (size_t i = 0; i < n; ++i) a.as<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  DeviceBuffer d1(n), d2(n);
  copy_to_device(d1.data(), a.data(), n, ctx().stream());
  copy_on_device(d2.data(), d1.data(), n, ctx().stream());
  copy_to_host(b.data(), d2.data(), n, ctx().stream());
  ctx().sync();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), n), 0);
  // the arena on the device: aligned, reusable
  DeviceArena& ws = ctx().scratch();
  const DeviceArena::Mark m = ws.mark();
  void* p = ws.alloc_bytes(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  fill_zero(p, 1000, ctx().stream());
  ws.rewind(m);
  EXPECT_EQ(ws.alloc_bytes(1000), p);
  ws.rewind(m);
  ctx().sync();
}

TEST_F(CudaRuntime, AnImpossibleAllocationThrowsAndTheContextStillWorks) {
  try {
    DeviceBuffer huge(size_t{1} << 52);  // 4 PiB
    FAIL() << "allocated 4 PiB";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaMalloc"), std::string::npos) << e.what();
  }
  DeviceBuffer ok(1024);
  fill_zero(ok.data(), 1024, ctx().stream());
  ctx().sync();
}

}  // namespace
}  // namespace clipkit::cuda
