#include "backend/cuda/embedding.h"
#include "cuda_test_util.h"
#include "backend/cpu/embedding.h"

namespace clipkit::cuda {
namespace {
using namespace clipkit::test;

class CudaEmbedding : public CudaTest {};

TEST_F(CudaEmbedding, GatherAndDeterministicScatterAddAreTheCpus) {
  const int64_t V = 97, C = 131, n = 1000;
  const std::vector<float> table = random_vec(static_cast<size_t>(V * C), 51);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::mt19937 g(52);
  for (auto& id : ids) id = static_cast<int32_t>(g() % 10 == 0 ? 1 : g() % V);  // id 1 (padding) often, repeats
  const std::vector<float> y0 = random_vec(static_cast<size_t>(n * C), 53), dy = random_vec(static_cast<size_t>(n * C), 54);
  auto dt = up(table);
  auto di = up(ids);
  for (bool acc : {false, true}) {
    std::vector<float> y_ref(y0);
    backend::cpu::embedding_forward(table.data(), ids.data(), n, C, y_ref.data(), acc);
    auto y = acc ? up(y0) : poisoned<float>(n * C);
    embedding_forward(dt.p(), V, di.p(), n, C, y.p(), acc, ctx());
    EXPECT_EQ(down(y), y_ref) << "accumulate " << acc;
  }
  for (int32_t skip : {-1, 1}) {
    const std::vector<float> dtable0 = random_vec(static_cast<size_t>(V * C), 55);
    std::vector<float> ref(dtable0);
    backend::cpu::embedding_backward(dy.data(), ids.data(), n, C, ref.data(), skip);
    auto dtab = up(dtable0);
    auto ddy = up(dy);
    embedding_backward(ddy.p(), di.p(), n, C, dtab.p(), V, skip, ctx());
    EXPECT_EQ(down(dtab), ref) << "skip " << skip;  // bit for bit: each row's sum in row order
  }
}

TEST_F(CudaEmbedding, IdsOutsideTheTableTouchNothing) {
  const int64_t V = 4, C = 3;
  const std::vector<float> table = random_vec(static_cast<size_t>(V * C), 56);
  const std::vector<int32_t> ids = {2, -5, 4, 1000, 2};
  auto dt = up(table);
  auto di = up(ids);
  const std::vector<float> y0 = random_vec(5 * C, 60);
  auto y = up(y0);
  embedding_forward(dt.p(), V, di.p(), 5, C, y.p(), false, ctx());
  const std::vector<float> yh = down(y);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_EQ(yh[c], table[2 * C + c]);
    EXPECT_EQ(yh[C + c], y0[C + c]);  // a negative id: the row is left as it is (the CPU's rule)
    for (int r : {2, 3}) EXPECT_EQ(yh[r * C + c], 0.0f);
  }
  const std::vector<float> dy = random_vec(5 * C, 57);
  std::vector<float> want(V * C, 0.0f);
  for (int64_t c = 0; c < C; ++c) want[2 * C + c] = dy[c] + dy[4 * C + c];
  auto ddy = up(dy);
  auto dtab = up(std::vector<float>(V * C, 0.0f));
  embedding_backward(ddy.p(), di.p(), 5, C, dtab.p(), V, -1, ctx());
  EXPECT_EQ(down(dtab), want);
}

TEST_F(CudaEmbedding, RowIndexTensors) {
  const int64_t B = 5, L = 9, C = 33;
  const std::vector<float> x = random_vec(static_cast<size_t>(B * L * C), 58);
  // gather / scatter by an index tensor (LayerRows), fp32 and bf16
  const int64_t M = B * L, W = C;
  const std::vector<int32_t> idx = {3, 0, 44, 17, 8, 9};
  const int64_t n = static_cast<int64_t>(idx.size());
  auto di = up(idx);
  auto dx = up(x);
  auto g = poisoned<float>(n * W);
  gather_rows(dx.p(), di.p(), n, W, 4, g.p(), ctx());
  const std::vector<float> gh = down(g);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < W; ++c) ASSERT_EQ(gh[r * W + c], x[idx[r] * W + c]);
  auto s = poisoned<float>(M * W);
  scatter_rows(g.p(), di.p(), n, M, W, 4, s.p(), true, ctx());
  std::vector<float> want(M * W, 0.0f);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < W; ++c) want[idx[r] * W + c] = x[idx[r] * W + c];
  EXPECT_EQ(down(s), want);
  const std::vector<uint16_t> xb = to_bf16_host(x);
  auto dxb = up(xb);
  auto gb = poisoned<uint16_t>(n * W);
  auto sb = poisoned<uint16_t>(M * W);
  gather_rows(dxb.p(), di.p(), n, W, 2, gb.p(), ctx());
  scatter_rows(gb.p(), di.p(), n, M, W, 2, sb.p(), true, ctx());
  std::vector<uint16_t> wantb(M * W, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < W; ++c) wantb[idx[r] * W + c] = xb[idx[r] * W + c];
  EXPECT_EQ(down(sb), wantb);
}

}  // namespace
}  // namespace clipkit::cuda
