// A tower's last encoder layer computes only the rows its pooling uses (TEncoderLayer's `keep`):
// those rows, the gradient reaching the layer input and every weight gradient must equal the
// full layer's with the same upstream gradient on the pooled rows (zero elsewhere), for pre-LN
// (CLIP: causal mask, EOS positions) and post-LN (RoBERTa: padding mask, first token) layers,
// with hidden and attention dropout on, in fp32 and bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/fd_util.h"
#include "ops/precision.h"
#include "train/trainable_blocks.h"

namespace clipkit::train {
namespace {

using test::randn;

TEncoderLayer random_layer(bool pre_ln, int64_t C, int64_t H, int64_t I) {
  TEncoderLayer l;
  l.pre_ln = pre_ln;
  l.C = C;
  l.heads = H;
  l.I = I;
  l.act = pre_ln ? ops::Act::QuickGelu : ops::Act::Gelu;
  l.site = 3;
  l.qkv.init(randn(3 * C * C, 1, 0.3f), randn(3 * C, 2, 0.1f), 3 * C, C);
  l.out.init(randn(C * C, 3, 0.3f), randn(C, 4, 0.1f), C, C);
  l.fc1.init(randn(I * C, 5, 0.3f), randn(I, 6, 0.1f), I, C);
  l.fc2.init(randn(C * I, 7, 0.2f), randn(C, 8, 0.1f), C, I);
  for (TLayerNorm* ln : {&l.ln1, &l.ln2}) {
    ln->w = randn(C, 9, 0.1f);
    for (auto& v : ln->w) v += 1.0f;
    ln->b = randn(C, 10, 0.1f);
    ln->gw.assign(C, 0.0f);
    ln->gb.assign(C, 0.0f);
  }
  return l;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, mx = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    mx = std::max(mx, std::fabs(static_cast<double>(want[i])));
  }
  return err / std::max(1.0, mx);
}

void check(bool pre_ln, ops::Precision prec) {
  const int64_t B = 3, L = 7, C = 16, H = 2, I = 32, M = B * L;
  const std::vector<int64_t> pos = {2, 0, 6};
  std::vector<int32_t> mask(M, 1);
  if (!pre_ln) mask[L - 1] = mask[L - 2] = mask[2 * L - 1] = 0;  // padded tails (the first token is kept)
  const int32_t* km = pre_ln ? nullptr : mask.data();
  const std::vector<int64_t>* pp = pre_ln ? &pos : nullptr;   // RoBERTa pools row 0 (pos null)
  StepContext sc;
  sc.precision = prec;
  sc.hidden_dropout = pre_ln ? 0.0f : 0.2f;
  sc.attention_dropout = 0.2f;
  sc.seed = 11;
  const auto x = randn(M * C, 20);
  const auto dyk = randn(B * C, 21);
  const PooledRows keep{pp ? pp->data() : nullptr};
  auto row = [&](int64_t b) { return b * L + (pp ? (*pp)[b] : 0); };

  TEncoderLayer full = random_layer(pre_ln, C, H, I), part = full;
  LayerCache cf, cp;
  std::vector<float> yf(M * C), yp(B * C), dyf(M * C, 0.0f), dxf(M * C), dxp(M * C);
  full.forward(x.data(), yf.data(), B, L, pre_ln, km, cf, sc, 5);
  part.forward(x.data(), yp.data(), B, L, pre_ln, km, cp, sc, 5, &keep);
  std::vector<float> yf_kept(B * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      yf_kept[b * C + c] = yf[row(b) * C + c];
      dyf[row(b) * C + c] = dyk[b * C + c];
    }
  const double tol = 2e-6;  // fp32: matmuls over other row counts round differently (seen 3.5e-7)  // bf16: rounding of other-M matmuls
  EXPECT_LE(rel_err(yp, yf_kept), tol) << "forward";
  full.backward(x.data(), dyf.data(), dxf.data(), B, L, cf, true, sc, 5);
  part.backward(x.data(), dyk.data(), dxp.data(), B, L, cp, true, sc, 5, &keep);
  EXPECT_LE(rel_err(dxp, dxf), tol) << "dx";
  const std::pair<const char*, std::pair<const std::vector<float>*, const std::vector<float>*>> grads[] = {
      {"qkv.w", {&part.qkv.gw, &full.qkv.gw}}, {"qkv.b", {&part.qkv.gb, &full.qkv.gb}},
      {"out.w", {&part.out.gw, &full.out.gw}}, {"out.b", {&part.out.gb, &full.out.gb}},
      {"fc1.w", {&part.fc1.gw, &full.fc1.gw}}, {"fc1.b", {&part.fc1.gb, &full.fc1.gb}},
      {"fc2.w", {&part.fc2.gw, &full.fc2.gw}}, {"fc2.b", {&part.fc2.gb, &full.fc2.gb}},
      {"ln1.w", {&part.ln1.gw, &full.ln1.gw}}, {"ln1.b", {&part.ln1.gb, &full.ln1.gb}},
      {"ln2.w", {&part.ln2.gw, &full.ln2.gw}}, {"ln2.b", {&part.ln2.gb, &full.ln2.gb}}};
  for (const auto& [name, g] : grads) {
    double mx = 0;
    for (float v : *g.second) mx = std::max(mx, std::fabs(static_cast<double>(v)));
    EXPECT_GT(mx, 0.0) << name;  // the gradient reaches every weight
    EXPECT_LE(rel_err(*g.first, *g.second), tol) << name;
  }
}

TEST(PooledRows, PreLnLayerMatchesFullLayerFp32) { check(true, ops::Precision::F32); }
TEST(PooledRows, PostLnLayerMatchesFullLayerFp32) { check(false, ops::Precision::F32); }
TEST(PooledRows, PreLnLayerMatchesFullLayerBf16) { check(true, ops::Precision::BF16); }
TEST(PooledRows, PostLnLayerMatchesFullLayerBf16) { check(false, ops::Precision::BF16); }

}  // namespace
}  // namespace clipkit::train
