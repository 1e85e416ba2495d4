#include "pipeline/embedder.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>

#include "core/error.h"
#include "core/parallel.h"
#include "io/model_location.h"

namespace clipkit::pipeline {

namespace fs = std::filesystem;

std::unique_ptr<Embedder> Embedder::load(const std::string& model, const model::LoadOptions& o) {
  const std::string dir = resolve_model_dir(model);  // a folder, hub id or cache folder (io/model_location.h)
  auto e = std::make_unique<Embedder>();
  e->model_ = model::ClipModel::load(dir, o);  // weights holding NaN are refused there (LoadOptions::check_finite)
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
    if (!model_->has_text()) fail("{}: {}", model_->dir(), model_->missing_tower(model::Part::Text));
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

Tensor Embedder::image_batch(const float* pixels, int64_t n) const {
  backend::Backend& be = model_->backend();
  if (!be.records_passes() || n > PassCache::kDefaultMaxBatch) return model_->image_features(pixels, n);
  std::lock_guard<std::mutex> lock(small_mu_);  // the staging slots are shared (the device serializes anyway)
  if (!passes_) passes_ = std::make_unique<PassCache>(be);
  const size_t bytes = sizeof(float) * static_cast<size_t>(n * 3 * model_->image_size() * model_->image_size());
  SmallBatch& slot = small_[n];  // map nodes stay put: the pass keeps this address
  if (!slot.pixels) slot.pixels = be.host_buffer(bytes);
  std::memcpy(slot.pixels.get(), pixels, bytes);
  passes_->run("image/" + std::to_string(n), n, [this, s = &slot, n] {
    s->out = model_->image_features(static_cast<const float*>(s->pixels.get()), n);
  });
  return slot.out;
}

Tensor Embedder::embed_pixels(const float* pixels, int64_t N, const EmbedOptions& o, Progress* p) const {
  const int64_t S = model_->image_size(), per = 3 * S * S;
  std::vector<Tensor> parts;
  for (int64_t b = 0; b < N; b += o.batch_size) {
    int64_t n = std::min<int64_t>(o.batch_size, N - b);
    Tensor f = image_batch(pixels + b * per, n);
    if (o.normalize) model::l2_normalize_rows(f.ptr<float>(), f.dim(0), f.dim(1));
    parts.push_back(std::move(f));
    if (p) p->add(n);
  }
  return concat_rows(parts, dim());
}

Tensor Embedder::embed_image_files(const std::vector<std::string>& paths, const EmbedOptions& o,
                                   std::vector<int64_t>* kept, std::vector<SkippedInput>* skipped, Progress* p) const {
  if (!model_->has_vision()) fail("{}: {}", model_->dir(), model_->missing_tower(model::Part::Vision));
  const int64_t S = model_->image_size(), per = 3 * S * S;
  const size_t bs = static_cast<size_t>(std::max(1, o.batch_size));
  // Two staging buffers (page-locked on a GPU): batch k+1 is decoded into one on a worker thread
  // (its own parallel decode) while batch k runs on the device from the other.
  const size_t bytes = sizeof(float) * std::max<size_t>(1, std::min(bs, paths.size())) * static_cast<size_t>(per);
  std::shared_ptr<void> staging[2] = {model_->backend().host_buffer(bytes), model_->backend().host_buffer(bytes)};
  struct Decoded {
    std::vector<int64_t> kept;
    std::vector<SkippedInput> skipped;
  };
  const int threads = num_threads();  // the caller's setting (a worker thread starts with OpenMP's default)
  auto decode = [&](size_t b, float* px) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(bs), static_cast<int64_t>(paths.size() - b));
    std::vector<std::string> err(static_cast<size_t>(n));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        image::load_and_preprocess(paths[b + i], pre_, px + i * per, o.decode);
      } catch (const std::exception& e) {
        err[static_cast<size_t>(i)] = e.what();
        if (err[static_cast<size_t>(i)].empty()) err[static_cast<size_t>(i)] = "unreadable";
      }
    }
    Decoded d;  // the readable rows compacted to the front
    for (int64_t i = 0; i < n; ++i) {
      if (!err[static_cast<size_t>(i)].empty()) {
        d.skipped.push_back({paths[b + i], err[static_cast<size_t>(i)]});
        continue;
      }
      const int64_t good = static_cast<int64_t>(d.kept.size());
      if (good != i) std::memmove(px + good * per, px + i * per, sizeof(float) * per);
      d.kept.push_back(static_cast<int64_t>(b) + i);
    }
    return d;
  };
  auto buffer = [&](size_t k) { return static_cast<float*>(staging[k % 2].get()); };
  std::vector<Tensor> parts;
  kept->clear();
  std::future<Decoded> next;
  if (!paths.empty()) next = std::async(std::launch::async, decode, size_t{0}, buffer(0));
  for (size_t b = 0, k = 0; b < paths.size(); b += bs, ++k) {
    Decoded d = next.get();
    // the other buffer's batch (k - 1) is done: image_features returned after downloading its result
    if (b + bs < paths.size()) next = std::async(std::launch::async, decode, b + bs, buffer(k + 1));
    if (skipped) skipped->insert(skipped->end(), d.skipped.begin(), d.skipped.end());
    kept->insert(kept->end(), d.kept.begin(), d.kept.end());
    const int64_t good = static_cast<int64_t>(d.kept.size());
    if (good > 0) {
      Tensor f = image_batch(buffer(k), good);
      if (o.normalize) model::l2_normalize_rows(f.ptr<float>(), f.dim(0), f.dim(1));
      parts.push_back(std::move(f));
    }
    if (p) p->add(static_cast<int64_t>(d.kept.size() + d.skipped.size()));
  }
  return concat_rows(parts, dim());
}

}  // namespace clipkit::pipeline
