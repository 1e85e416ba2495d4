#include "pipeline/embedder.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/parallel.h"
#include "io/safetensors.h"
#include "io/model_location.h"

namespace clipkit::pipeline {

namespace fs = std::filesystem;

std::unique_ptr<Embedder> Embedder::load(const std::string& model, const model::LoadOptions& o) {
  const std::string dir = resolve_model_dir(model);  // a folder, hub id or cache folder (io/model_location.h)
  auto e = std::make_unique<Embedder>();
  e->model_ = model::ClipModel::load(dir, o);
  Checkpoint(dir).require_finite();
  if (e->model_->has_text()) {
    try {
      e->tok_ = text::Tokenizer::from_dir(dir);
    } catch (const Error& err) {
      e->tok_error_ = err.what();  // reported when text is actually embedded
    }
  }
  if (e->model_->has_vision()) {
    fs::path pc = fs::path(dir) / "preprocessor_config.json";
    e->pre_ = fs::exists(pc) ? image::PreprocessConfig::from_file(pc.string())
                             : image::PreprocessConfig::clip_default(e->model_->image_size());
    const auto [h, w] = e->pre_.output_size();
    if (h != e->model_->image_size() || w != e->model_->image_size())
      fail("{}: preprocessor_config.json makes {}x{} images but the vision tower takes {}x{} images", dir, w, h,
           e->model_->image_size(), e->model_->image_size());
  }
  return e;
}

void Embedder::set_image_backend(image::ImageBackend b) {
  if (!model_->has_vision()) return;
  image::PreprocessConfig c = pre_;
  c.backend = b;
  c.check((fs::path(model_->dir()) / "preprocessor_config.json").string());
  pre_ = c;
}

const text::Tokenizer& Embedder::tokenizer() const {
  if (!tok_) {
    if (!model_->has_text()) fail("{}: this model has no text tower", model_->dir());
    fail("{}", tok_error_);
  }
  return *tok_;
}

int64_t Embedder::max_text_tokens() const {
  int64_t m = model_->max_text_length();
  int tm = tokenizer().model_max_length();
  return tm > 0 ? std::min<int64_t>(m, tm) : m;
}

void Embedder::tokenize(const std::vector<std::string>& texts, std::vector<int32_t>* ids, std::vector<int32_t>* mask,
                        int64_t* L, int64_t max_tokens) const {
  text::EncodeOptions eo;
  eo.max_length = static_cast<int>(max_tokens > 0 ? std::min(max_tokens, max_text_tokens()) : max_text_tokens());
  auto enc = tokenizer().encode_batch(texts, eo);
  // an id past the text tower's embedding table would read outside it (HF: IndexError)
  const int64_t vocab = model_->config().text ? model_->config().text->vocab_size : 0;
  for (size_t i = 0; i < enc.size(); ++i)
    for (int32_t id : enc[i].ids)
      if (id < 0 || id >= vocab)
        fail("{}: text {} has token id {}, but the text tower's vocab_size is {} (the tokenizer and config.json "
             "disagree)", model_->dir(), i, id, vocab);
  int64_t len = 1;
  for (auto& e : enc) len = std::max<int64_t>(len, static_cast<int64_t>(e.ids.size()));
  const int32_t pad = tokenizer().pad_id();
  ids->assign(texts.size() * len, pad);
  mask->assign(texts.size() * len, 0);
  for (size_t i = 0; i < enc.size(); ++i) {
    std::copy(enc[i].ids.begin(), enc[i].ids.end(), ids->begin() + static_cast<int64_t>(i) * len);
    std::fill_n(mask->begin() + static_cast<int64_t>(i) * len, enc[i].ids.size(), 1);
  }
  *L = len;
}

Tensor concat_rows(const std::vector<Tensor>& parts, int64_t D) {
  int64_t n = 0;
  for (auto& p : parts) n += p.dim(0);
  Tensor out = Tensor::empty(DType::F32, {n, D});
  int64_t r = 0;
  for (auto& p : parts) {
    std::memcpy(out.ptr<float>() + r * D, p.data, p.nbytes());
    r += p.dim(0);
  }
  return out;
}

Tensor Embedder::embed_texts(const std::vector<std::string>& texts, const EmbedOptions& o, Progress* p) const {
  if (o.max_text_tokens != 0 && (o.max_text_tokens < 0 || o.max_text_tokens > max_text_tokens()))
    fail("{}: a text length limit of {} tokens is not within the model's {} text positions", model_->dir(),
         o.max_text_tokens, max_text_tokens());
  std::vector<Tensor> parts;
  for (size_t b = 0; b < texts.size(); b += static_cast<size_t>(o.batch_size)) {
    std::vector<std::string> batch(texts.begin() + b, texts.begin() + std::min(texts.size(), b + o.batch_size));
    std::vector<int32_t> ids, mask;
    int64_t L;
    tokenize(batch, &ids, &mask, &L, o.max_text_tokens);
    Tensor f = model_->text_features(ids.data(), mask.data(), static_cast<int64_t>(batch.size()), L);
    if (o.normalize) model::l2_normalize_rows(f.ptr<float>(), f.dim(0), f.dim(1));
    parts.push_back(std::move(f));
    if (p) p->add(static_cast<int64_t>(batch.size()));
  }
  return concat_rows(parts, dim());
}

Tensor Embedder::embed_pixels(const float* pixels, int64_t N, const EmbedOptions& o, Progress* p) const {
  const int64_t S = model_->image_size(), per = 3 * S * S;
  std::vector<Tensor> parts;
  for (int64_t b = 0; b < N; b += o.batch_size) {
    int64_t n = std::min<int64_t>(o.batch_size, N - b);
    Tensor f = model_->image_features(pixels + b * per, n);
    if (o.normalize) model::l2_normalize_rows(f.ptr<float>(), f.dim(0), f.dim(1));
    parts.push_back(std::move(f));
    if (p) p->add(n);
  }
  return concat_rows(parts, dim());
}

Tensor Embedder::embed_image_files(const std::vector<std::string>& paths, const EmbedOptions& o,
                                   std::vector<int64_t>* kept, std::vector<SkippedInput>* skipped, Progress* p) const {
  if (!model_->has_vision()) fail("{}: this model has no vision tower", model_->dir());
  const int64_t S = model_->image_size(), per = 3 * S * S;
  std::vector<Tensor> parts;
  kept->clear();
  for (size_t b = 0; b < paths.size(); b += static_cast<size_t>(o.batch_size)) {
    const int64_t n = std::min<int64_t>(o.batch_size, static_cast<int64_t>(paths.size() - b));
    std::vector<float> px(static_cast<size_t>(n * per));
    std::vector<std::string> err(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        image::load_and_preprocess(paths[b + i], pre_, px.data() + i * per, o.decode);
      } catch (const std::exception& e) {
        err[static_cast<size_t>(i)] = e.what();
        if (err[static_cast<size_t>(i)].empty()) err[static_cast<size_t>(i)] = "unreadable";
      }
    }
    // compact the readable rows to the front
    int64_t good = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!err[static_cast<size_t>(i)].empty()) {
        skipped->push_back({paths[b + i], err[static_cast<size_t>(i)]});
        continue;
      }
      if (good != i) std::memmove(px.data() + good * per, px.data() + i * per, sizeof(float) * per);
      kept->push_back(static_cast<int64_t>(b) + i);
      ++good;
    }
    if (good > 0) {
      Tensor f = model_->image_features(px.data(), good);
      if (o.normalize) model::l2_normalize_rows(f.ptr<float>(), f.dim(0), f.dim(1));
      parts.push_back(std::move(f));
    }
    if (p) p->add(n);
  }
  return concat_rows(parts, dim());
}

}  // namespace clipkit::pipeline
