// clipkit bench parity --model DIR --inputs FILE.safetensors --out FILE.safetensors [--grads]
//                      [--device cpu|cuda] [--precision fp32|bf16]
// What bench/gpu/clipkit_side.py compares with Hugging Face's dumps (bench/gpu/hf_side.py's
// parity section), on any device:
//   embeddings: reads pixel_values [NI, 3, S, S] (F32), input_ids and attention_mask [N, L] (I64 or
//     I32) and writes image_embeds [NI, P] and text_embeds [N, P] (F32, unnormalized: HF's
//     get_image_features / get_text_features).
//   --grads: reads input.pixel_values, input.input_ids, input.attention_mask, runs one training step
//     of the dual encoder with dropout off (forward, CLIP loss, backward: no optimizer step), and
//     writes every trainable parameter's gradient under its HF name (logit_scale's included) and
//     "loss" (F64).
#include <nlohmann/json.hpp>

#include "cmd_bench_parity.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/clip_model.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, inputs, out;
  bool grads = false;
  ComputeOptions compute;
};

// [N, L] token ids or mask, I64 or I32 -> int32
std::vector<int32_t> ids_of(const SafeTensorsFile& f, const std::string& name, int64_t* n, int64_t* l) {
  const Tensor& t = f.get(name);
  if (t.shape.size() != 2 || (t.dtype != DType::I64 && t.dtype != DType::I32))
    fail("{}: {} must be an I64 or I32 matrix, got {} {}", f.path(), name, dtype_name(t.dtype), shape_str(t.shape));
  *n = t.dim(0);
  *l = t.dim(1);
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    v[i] = t.dtype == DType::I64 ? static_cast<int32_t>(t.ptr<int64_t>()[i]) : t.ptr<int32_t>()[i];
  return v;
}

// [N, 3, S, S] at the model's S
Tensor pixels_of(const SafeTensorsFile& f, const std::string& name, int64_t size) {
  Tensor px = f.get(name).to_f32();
  if (px.shape.size() != 4 || px.dim(1) != 3 || px.dim(2) != size || px.dim(3) != size)
    fail("{}: {} has shape {}, the model needs [N, 3, {}, {}]", f.path(), name, shape_str(px.shape), size, size);
  return px;
}

Tensor to_host(backend::Backend& be, const backend::Tensor& t) {
  Tensor h = Tensor::empty(DType::F32, t.shape());
  be.download(t, h.ptr<float>());
  return h;
}

int run(const Opts& o) {
  model::LoadOptions lo = load_options(o.compute);
  lo.train = o.grads;
  lo.dropout = false;
  auto m = model::ClipModel::load(o.model, lo);
  if (!m->has_vision() || !m->has_text()) fail("{}: bench parity needs both towers", o.model);
  backend::Backend& be = m->backend();
  SafeTensorsFile in(o.inputs);
  const std::string pre = o.grads ? "input." : "";
  int64_t N = 0, L = 0, N2 = 0, L2 = 0;
  const std::vector<int32_t> ids = ids_of(in, pre + "input_ids", &N, &L), mask = ids_of(in, pre + "attention_mask", &N2, &L2);
  if (N2 != N || L2 != L) fail("{}: attention_mask is [{}, {}], input_ids [{}, {}]", o.inputs, N2, L2, N, L);
  const Tensor px = pixels_of(in, pre + "pixel_values", m->image_size());
  const int64_t NI = px.dim(0);  // images (any number; a training step pairs them with the N captions)
  if (o.grads && NI != N) fail("{}: {} images and {} captions: a training step needs pairs", o.inputs, NI, N);
  std::vector<std::pair<std::string, Tensor>> out;
  backend::Arena::Scope scope(be.thread_arena());
  if (!o.grads) {
    out.emplace_back("image_embeds", m->image_features(px.ptr<float>(), NI));
    out.emplace_back("text_embeds", m->text_features(ids.data(), mask.data(), N, L));
  } else {
    m->zero_grad();
    auto img = m->embed_images(px.ptr<float>(), N, true, 0);
    auto txt = m->embed_texts(ids.data(), mask.data(), N, L, true, 0);
    auto di = be.thread_arena().alloc(DType::F32, img.shape()), dt = be.thread_arena().alloc(DType::F32, txt.shape());
    const auto loss = be.clip_loss(img, txt, m->logit_scale_param().value, &di, &dt);
    m->backward(model::Part::Vision, di);
    m->backward(model::Part::Text, dt);
    m->settle_grads();
    for (model::Param* p : m->trainable()) {
      if (p == &m->logit_scale_param()) continue;
      Tensor g = to_host(be, p->grad);
      g.shape = p->shape;  // as HF stores it
      out.emplace_back(p->name, g);
    }
    Tensor ds = Tensor::empty(DType::F32, m->logit_scale_param().shape);
    ds.ptr<float>()[0] = static_cast<float>(loss.dlogit_scale);
    out.emplace_back(m->logit_scale_param().name, ds);
    Tensor l = Tensor::empty(DType::F64, {});
    l.ptr<double>()[0] = loss.loss;
    out.emplace_back("loss", l);
  }
  write_safetensors(o.out, out, {{"device", lo.device}, {"precision", o.compute.precision}, {"model", o.model}});
  std::fprintf(stderr, "clipkit bench parity: %zu tensors -> %s (%s, %s)\n", out.size(), o.out.c_str(), lo.device.c_str(),
               o.compute.precision.c_str());
  return kOk;
}

}  // namespace

RunFn setup_bench_parity(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model, ModelUse::Required, "HF checkpoint (CLIPModel or dual encoder)");
  app.add_option("--inputs", o->inputs, "safetensors with the inputs (bench/gpu/hf_side.py's parity dump)")->required();
  app.add_option("--out", o->out, "safetensors to write: embeddings, or (--grads) gradients under HF names")->required();
  app.add_flag("--grads", o->grads, "one training step's gradients (dropout off) instead of embeddings");
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    return run(*o);
  };
}

}  // namespace clipkit::cli
