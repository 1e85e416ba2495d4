// A layer computing only some rows (LayerRows): a tower's last layer keeps only its pooled rows, and
// text towers drop padded tokens from every layer. The rows computed, the gradient reaching the
// layer input and every weight gradient must equal the full layer's with the same upstream gradient
// on the pooled rows (zero elsewhere), for pre-LN (CLIP: causal mask, EOS positions) and post-LN
// (RoBERTa: padding mask, first token) layers, with hidden and attention dropout on, fp32 and bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "edited_model.h"
#include "ops/fd_util.h"
#include "ops/precision.h"
#include "train/trainable_blocks.h"
#include "train/trainable_model.h"

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

// unpad: the layer also drops the padded rows (LayerRows::in = the real tokens); their gradient in
// the full layer must be exactly zero.
void check(bool pre_ln, ops::Precision prec, bool unpad) {
  const int64_t B = 3, L = 7, C = 16, H = 2, I = 32, M = B * L;
  const std::vector<int64_t> lens = {5, 7, 4};
  std::vector<int32_t> mask(M, 1);
  const bool padded = unpad || !pre_ln;
  if (padded)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = lens[b]; t < L; ++t) mask[b * L + t] = 0;  // padded tails
  const int32_t* km = padded ? mask.data() : nullptr;
  const std::vector<int64_t> pos = pre_ln ? std::vector<int64_t>{2, 0, 3} : std::vector<int64_t>{0, 0, 0};
  std::vector<int64_t> in, out;  // LayerRows: padded rows of the input, pooled rows among them
  for (int64_t r = 0; r < M; ++r)
    if (!unpad || mask[r]) in.push_back(r);
  for (int64_t b = 0; b < B; ++b)
    out.push_back(std::find(in.begin(), in.end(), b * L + pos[b]) - in.begin());
  LayerRows rows;
  if (unpad) rows.in = in.data(), rows.n_in = static_cast<int64_t>(in.size());
  rows.out = out.data();
  rows.n_out = B;
  const int64_t Ri = static_cast<int64_t>(in.size());

  StepContext sc;
  sc.precision = prec;
  sc.hidden_dropout = pre_ln ? 0.0f : 0.2f;
  sc.attention_dropout = 0.2f;
  const auto x = randn(M * C, 20);
  const auto dyk = randn(B * C, 21);
  std::vector<float> xi(Ri * C);
  for (int64_t l = 0; l < Ri; ++l) std::copy(x.begin() + in[l] * C, x.begin() + (in[l] + 1) * C, xi.begin() + l * C);

  TEncoderLayer full = random_layer(pre_ln, C, H, I), part = full;
  LayerCache cf, cp;
  std::vector<float> yf(M * C), yp(B * C), dyf(M * C, 0.0f), dxf(M * C), dxp(Ri * C);
  full.forward(x.data(), yf.data(), B, L, pre_ln, km, cf, sc, 5);
  part.forward(xi.data(), yp.data(), B, L, pre_ln, km, cp, sc, 5, rows);
  std::vector<float> yf_kept(B * C), dxf_in(Ri * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      yf_kept[b * C + c] = yf[(b * L + pos[b]) * C + c];
      dyf[(b * L + pos[b]) * C + c] = dyk[b * C + c];
    }
  const double tol = 2e-6;  // fp32: matmuls over other row counts round differently (seen 3.5e-7)
  EXPECT_LE(rel_err(yp, yf_kept), tol) << "forward";
  full.backward(x.data(), dyf.data(), dxf.data(), B, L, cf, true, sc, 5);
  part.backward(xi.data(), dyk.data(), dxp.data(), B, L, cp, true, sc, 5, rows);
  for (int64_t l = 0; l < Ri; ++l)
    std::copy(dxf.begin() + in[l] * C, dxf.begin() + (in[l] + 1) * C, dxf_in.begin() + l * C);
  EXPECT_LE(rel_err(dxp, dxf_in), tol) << "dx";
  for (int64_t r = 0; unpad && r < M; ++r) {
    if (mask[r]) continue;
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(dxf[r * C + c], 0.0f) << "padded row " << r;
  }
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

TEST(LayerRows, PooledPreLnLayerMatchesFullLayerFp32) { check(true, ops::Precision::F32, false); }
TEST(LayerRows, PooledPostLnLayerMatchesFullLayerFp32) { check(false, ops::Precision::F32, false); }
TEST(LayerRows, PooledPreLnLayerMatchesFullLayerBf16) { check(true, ops::Precision::BF16, false); }
TEST(LayerRows, PooledPostLnLayerMatchesFullLayerBf16) { check(false, ops::Precision::BF16, false); }
TEST(LayerRows, UnpaddedPreLnLayerMatchesFullLayerFp32) { check(true, ops::Precision::F32, true); }
TEST(LayerRows, UnpaddedPostLnLayerMatchesFullLayerFp32) { check(false, ops::Precision::F32, true); }
TEST(LayerRows, UnpaddedPreLnLayerMatchesFullLayerBf16) { check(true, ops::Precision::BF16, true); }
TEST(LayerRows, UnpaddedPostLnLayerMatchesFullLayerBf16) { check(false, ops::Precision::BF16, true); }

// A tower has to have a layer: the last one is where the pooled rows are picked.
TEST(LayerRows, TowerWithoutLayersIsRefused) {
  const std::string dir = testing::edited_copy("tiny-clip", "no_layers",
                                               [](nlohmann::json& c) { c["text_config"]["num_hidden_layers"] = 0; });
  try {
    TrainableClip::load(dir, {});
    FAIL() << "loaded a text tower without layers";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text_model.encoder.layers: no encoder layers (num_hidden_layers is 0)"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace clipkit::train
