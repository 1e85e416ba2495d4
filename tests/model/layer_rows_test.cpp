// A layer computing only some rows (Rows): a tower's last layer keeps only its pooled rows, and
// text towers drop padded tokens from every layer. The rows computed, the gradient reaching the
// layer input and every weight gradient must equal the full layer's with the same upstream gradient
// on the pooled rows (zero elsewhere), for pre-LN (CLIP: causal mask, EOS positions) and post-LN
// (RoBERTa: padding mask, first token) layers, with hidden and attention dropout on, fp32 and bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "core/error.h"
#include "edited_model.h"
#include "fd_util.h"
#include "model/blocks.h"
#include "model/clip_model.h"
#include "reference_batch.h"

namespace clipkit::model {
namespace {

using test::randn;

// The HF-named tensors of one layer with random values.
std::map<std::string, clipkit::Tensor> random_layer_weights(int64_t C, int64_t I) {
  std::map<std::string, clipkit::Tensor> w;
  uint32_t seed = 1;
  auto put = [&](const std::string& name, Shape s, float scale, float shift = 0) {
    auto v = randn(static_cast<size_t>(numel(s)), seed++, scale);
    clipkit::Tensor t = clipkit::Tensor::empty(DType::F32, s);
    for (size_t i = 0; i < v.size(); ++i) t.ptr<float>()[i] = v[i] + shift;
    w[name] = t;
  };
  for (const char* p : {"q.", "k.", "v.", "o."}) put(std::string(p) + "weight", {C, C}, 0.3f), put(std::string(p) + "bias", {C}, 0.1f);
  put("fc1.weight", {I, C}, 0.3f), put("fc1.bias", {I}, 0.1f), put("fc2.weight", {C, I}, 0.2f), put("fc2.bias", {C}, 0.1f);
  for (const char* p : {"ln1.", "ln2."}) put(std::string(p) + "weight", {C}, 0.1f, 1.0f), put(std::string(p) + "bias", {C}, 0.1f);
  return w;
}

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, mx = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    mx = std::max(mx, std::fabs(static_cast<double>(want[i])));
  }
  return err / std::max(1.0, mx);
}

// unpad: the layer also drops the padded rows (Rows::in = the real tokens); their gradient in
// the full layer must be exactly zero.
void check(bool pre_ln, backend::Precision prec, bool unpad) {
  const int64_t B = 3, L = 7, C = 16, H = 2, I = 32, M = B * L;
  const std::vector<int64_t> lens = {5, 7, 4};
  std::vector<int32_t> mask(M, 1);
  const bool padded = unpad || !pre_ln;
  if (padded)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = lens[b]; t < L; ++t) mask[b * L + t] = 0;  // padded tails
  const std::vector<int64_t> pos = pre_ln ? std::vector<int64_t>{2, 0, 3} : std::vector<int64_t>{0, 0, 0};
  std::vector<int32_t> in, out, out_padded;  // Rows: padded rows of the input, pooled rows among them
  for (int64_t r = 0; r < M; ++r)
    if (!unpad || mask[r]) in.push_back(static_cast<int32_t>(r));
  for (int64_t b = 0; b < B; ++b) {
    out.push_back(static_cast<int32_t>(std::find(in.begin(), in.end(), b * L + pos[b]) - in.begin()));
    out_padded.push_back(static_cast<int32_t>(b * L + pos[b]));
  }
  const int64_t Ri = static_cast<int64_t>(in.size());

  backend::Backend& be = backend::backend_for(test::test_device());
  backend::Arena::Scope scope(be.thread_arena());
  Pass p{be, be.thread_arena(), prec, /*save=*/true, pre_ln ? 0.0f : 0.2f, 0.2f, 5};
  auto upload = [&](const auto& v, DType t, Shape s) {
    Tensor d = p.arena.alloc(t, std::move(s));
    be.upload(v.data(), d);
    return d;
  };
  Rows rows;
  if (unpad) rows.in = upload(in, DType::I32, {Ri}), rows.n_in = Ri;
  rows.out = upload(out, DType::I32, {B});
  rows.out_padded = upload(out_padded, DType::I32, {B});
  rows.n_out = B;
  const Tensor km = upload(mask, DType::I32, {M});

  const auto weights = random_layer_weights(C, I);
  const WeightReader reader(weights, "test");
  const LoadPlan plan{Part::Text, true, -1, backend::WeightUse::Training, prec};
  const std::string mlp[2] = {"fc1.", "fc2."}, lns[2] = {"ln1.", "ln2."};
  ParamSet ps_full(be), ps_part(be);
  EncoderLayer full, part;
  for (auto [layer, ps] : {std::pair{&full, &ps_full}, {&part, &ps_part}}) {
    layer->pre_ln = pre_ln;
    layer->site = 3;
    layer->load(*ps, reader, {"q.", "k.", "v.", "o."}, mlp, lns, C, H, I,
                pre_ln ? backend::Act::QuickGelu : backend::Act::Gelu, 1e-5f, plan, 0);
  }
  const auto x = randn(M * C, 20);
  const auto dyk = randn(B * C, 21);
  std::vector<float> xi(Ri * C), dyf(M * C, 0.0f);
  for (int64_t l = 0; l < Ri; ++l) std::copy(x.begin() + in[l] * C, x.begin() + (in[l] + 1) * C, xi.begin() + l * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) dyf[(b * L + pos[b]) * C + c] = dyk[b * C + c];

  LayerSaved sf, sp;
  const Tensor tx = upload(x, DType::F32, {M, C}), txi = upload(xi, DType::F32, {Ri, C});
  Tensor yf = p.alloc({M, C}), yp = p.alloc({B, C}), dxf = p.alloc({M, C}), dxp = p.alloc({Ri, C});
  full.forward(p, tx, yf, B, L, pre_ln, padded ? &km : nullptr, Rows{}, &sf);
  part.forward(p, txi, yp, B, L, pre_ln, padded ? &km : nullptr, rows, &sp);
  const auto yfh = testing::host(be, yf);
  std::vector<float> yf_kept(B * C), dxf_in(Ri * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) yf_kept[b * C + c] = yfh[(b * L + pos[b]) * C + c];
  const double tol = 2e-6;  // fp32: matmuls over other row counts round differently (seen 3.5e-7)
  EXPECT_LE(rel_err(testing::host(be, yp), yf_kept), tol) << "forward";
  full.backward(p, upload(dyf, DType::F32, {M, C}), &dxf, B, L, sf, Rows{});
  part.backward(p, upload(dyk, DType::F32, {B, C}), &dxp, B, L, sp, rows);
  const auto dxfh = testing::host(be, dxf);
  for (int64_t l = 0; l < Ri; ++l) std::copy(dxfh.begin() + in[l] * C, dxfh.begin() + (in[l] + 1) * C, dxf_in.begin() + l * C);
  EXPECT_LE(rel_err(testing::host(be, dxp), dxf_in), tol) << "dx";
  for (int64_t r = 0; unpad && r < M; ++r) {
    if (mask[r]) continue;
    for (int64_t c = 0; c < C; ++c) ASSERT_EQ(dxfh[r * C + c], 0.0f) << "padded row " << r;
  }
  ASSERT_EQ(ps_full.all().size(), 16u);  // q/k/v/o, fc1, fc2 weights and biases, ln1, ln2
  for (size_t i = 0; i < ps_full.all().size(); ++i) {
    const Param &f = ps_full.all()[i], &q = ps_part.all()[i];
    const auto gf = testing::host(be, f.grad), gp = testing::host(be, q.grad);
    double mx = 0;
    for (float v : gf) mx = std::max(mx, std::fabs(static_cast<double>(v)));
    EXPECT_GT(mx, 0.0) << f.name;  // the gradient reaches every weight
    EXPECT_LE(rel_err(gp, gf), tol) << f.name;
  }
}

TEST(LayerRows, PooledPreLnLayerMatchesFullLayerFp32) { check(true, backend::Precision::F32, false); }
TEST(LayerRows, PooledPostLnLayerMatchesFullLayerFp32) { check(false, backend::Precision::F32, false); }
TEST(LayerRows, PooledPreLnLayerMatchesFullLayerBf16) { check(true, backend::Precision::BF16, false); }
TEST(LayerRows, PooledPostLnLayerMatchesFullLayerBf16) { check(false, backend::Precision::BF16, false); }
TEST(LayerRows, UnpaddedPreLnLayerMatchesFullLayerFp32) { check(true, backend::Precision::F32, true); }
TEST(LayerRows, UnpaddedPostLnLayerMatchesFullLayerFp32) { check(false, backend::Precision::F32, true); }
TEST(LayerRows, UnpaddedPreLnLayerMatchesFullLayerBf16) { check(true, backend::Precision::BF16, true); }
TEST(LayerRows, UnpaddedPostLnLayerMatchesFullLayerBf16) { check(false, backend::Precision::BF16, true); }

// A tower has to have a layer: the last one is where the pooled rows are picked.
TEST(LayerRows, TowerWithoutLayersIsRefused) {
  const std::string dir = testing::edited_copy("tiny-clip", "no_layers",
                                               [](nlohmann::json& c) { c["text_config"]["num_hidden_layers"] = 0; });
  try {
    ClipModel::load(dir);
    FAIL() << "loaded a text tower without layers";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text_model.encoder.layers: no encoder layers (num_hidden_layers is 0)"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace clipkit::model
