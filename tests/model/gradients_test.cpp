// Full fine-tuning gradients (nothing frozen, no dropout) equal the float64 autograd references in
// tests/data/reference/train/gradients.safetensors for every parameter of tiny-clip (CLIPModel)
// and tiny-clip-roberta (VisionTextDualEncoder), within the tolerances of its README:
// loss 5e-6; per tensor max|g - g_ref| / max(1, max|g_ref|) <= 3e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "io/safetensors.h"
#include "reference_batch.h"
#include "test_util.h"

namespace clipkit::model {
namespace {

using test::data_path;

// The reference gradient of `name` as a dense float64 array (sparse .rows/.values expanded).
bool ref_grad(const SafeTensorsFile& f, const std::string& model, const std::string& name, int64_t n,
              std::vector<double>* out) {
  const std::string key = model + "/grad." + name;
  out->assign(static_cast<size_t>(n), 0.0);
  if (f.has(key)) {
    clipkit::Tensor t = f.get(key).to_f64();
    if (t.numel() != n) return false;
    std::copy(t.ptr<double>(), t.ptr<double>() + n, out->begin());
    return true;
  }
  if (!f.has(key + ".rows")) return false;
  const clipkit::Tensor& rows = f.get(key + ".rows");
  clipkit::Tensor vals = f.get(key + ".values").to_f64();
  const int64_t D = vals.dim(1);
  for (int64_t r = 0; r < rows.dim(0); ++r)
    for (int64_t d = 0; d < D; ++d) (*out)[rows.ptr<int64_t>()[r] * D + d] = vals.ptr<double>()[r * D + d];
  return true;
}

struct Result {
  double loss = 0;
};

void check_model(const std::string& model, backend::Precision prec, double loss_tol, double grad_tol, bool ckpt = false) {
  SafeTensorsFile ref(data_path("reference/train/gradients.safetensors"));
  auto m = ClipModel::load(data_path("models/" + model), testing::training_options(prec, false, ckpt));
  auto r = testing::full_step(*m, testing::ReferenceBatch::load(ref, model), true, 0);
  const double ref_loss = ref.get(model + "/loss").to_f64().ptr<double>()[0];
  std::printf("%s loss %.9f (ref %.9f)\n", model.c_str(), r.loss, ref_loss);
  EXPECT_NEAR(r.loss, ref_loss, loss_tol);
  std::set<std::string> seen;
  double worst = 0;
  std::string worst_name;
  for (const auto& e : m->params()) {
    std::vector<double> g;
    const int64_t n = e.value.numel();
    ASSERT_TRUE(e.trainable()) << e.name;
    ASSERT_TRUE(ref_grad(ref, model, e.name, n, &g)) << "no reference gradient for " << e.name;
    seen.insert(e.name);
    const auto got = testing::host(m->backend(), e.grad);
    double mx = 0, err = 0;
    for (int64_t i = 0; i < n; ++i) {
      mx = std::max(mx, std::fabs(g[i]));
      err = std::max(err, std::fabs(static_cast<double>(got[i]) - g[i]));
    }
    const double scaled = err / std::max(1.0, mx);
    if (scaled > worst) worst = scaled, worst_name = e.name;
    EXPECT_LE(scaled, grad_tol) << e.name << " (max|ref| " << mx << ")";
  }
  std::printf("%s: %zu tensors, worst scaled gradient error %.3g (%s)\n", model.c_str(), seen.size(), worst,
              worst_name.c_str());
  // every parameter of the reference is covered
  for (const auto& [name, t] : ref.tensors()) {
    const std::string pre = model + "/grad.";
    if (name.rfind(pre, 0) != 0) continue;
    std::string p = name.substr(pre.size());
    for (const char* suf : {".rows", ".values"})
      if (p.size() > 5 && p.ends_with(suf)) p = p.substr(0, p.size() - std::string(suf).size());
    EXPECT_TRUE(seen.count(p)) << "reference parameter not trained: " << p;
  }
}

TEST(FullGradients, TinyClipMatchesReference) { check_model("tiny-clip", backend::Precision::F32, 5e-6, 3e-5); }
TEST(FullGradients, TinyClipRobertaMatchesReference) {
  check_model("tiny-clip-roberta", backend::Precision::F32, 5e-6, 3e-5);
}
// Recomputation gives the same gradients.
TEST(FullGradients, GradientCheckpointingMatchesReference) {
  check_model("tiny-clip-roberta", backend::Precision::F32, 5e-6, 3e-5, true);
  check_model("tiny-clip", backend::Precision::F32, 5e-6, 3e-5, true);
}
// bf16 matmuls: same gradients to bf16 accuracy.
TEST(FullGradients, Bf16TracksReference) { check_model("tiny-clip", backend::Precision::BF16, 2e-2, 5e-2); }

std::vector<std::vector<float>> grads_of(const ClipModel& m) {
  std::vector<std::vector<float>> g;
  for (const auto& e : m.params()) g.push_back(testing::host(m.backend(), e.grad));
  return g;
}

// zero_grad defers clearing the linear layers' gradients to their next write (ParamBuffer): a second
// step gives the first step's gradients bit for bit, settle_grads clears what no backward wrote,
// and a frozen tower gets no gradients.
TEST(FullGradients, DeferredZeroGradIsExact) {
  SafeTensorsFile ref(data_path("reference/train/gradients.safetensors"));
  for (auto prec : {backend::Precision::F32, backend::Precision::BF16}) {
    LoadOptions o = testing::training_options(prec, false);
    auto m = ClipModel::load(data_path("models/tiny-clip-roberta"), o);
    const auto batch = testing::ReferenceBatch::load(ref, "tiny-clip-roberta");
    testing::full_step(*m, batch, true, 0);
    const auto first = grads_of(*m);
    testing::full_step(*m, batch, true, 1);
    EXPECT_EQ(grads_of(*m), first) << backend::precision_name(prec);
    m->zero_grad();
    m->settle_grads();
    for (const auto& e : m->params())
      for (float v : testing::host(m->backend(), e.grad)) ASSERT_EQ(v, 0.0f) << e.name;

    o.freeze_text = true;
    auto f = ClipModel::load(data_path("models/tiny-clip-roberta"), o);
    for (uint64_t s = 0; s < 2; ++s) testing::full_step(*f, batch, true, s);
    int64_t nonzero_vision = 0;
    for (const auto& e : f->params()) {
      if (e.name.rfind("text_model.", 0) == 0) {
        ASSERT_FALSE(e.trainable()) << e.name;
        continue;
      }
      for (float v : testing::host(f->backend(), e.grad)) nonzero_vision += v != 0.0f;
    }
    EXPECT_GT(nonzero_vision, 1000);
  }
}

}  // namespace
}  // namespace clipkit::model
