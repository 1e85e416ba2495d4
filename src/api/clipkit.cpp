// The public API (include/clipkit/clipkit.h) over the library: pipeline::Embedder for models,
// index::Library for indexes. Built into libclipkit.so with only these symbols exported.
#include "clipkit/clipkit.h"

#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "image/preprocess.h"
#include "index/library.h"
#include "index/query.h"
#include "pipeline/bulk_embed.h"
#include "pipeline/embedder.h"

#ifndef CLIPKIT_VERSION
#define CLIPKIT_VERSION "unknown"
#endif

namespace clipkit {
namespace {

Embeddings to_embeddings(const Tensor& t, int64_t dim) {
  Embeddings e;
  e.dim = dim;
  e.rows = t.shape.empty() ? 0 : t.dim(0);
  if (e.rows) e.data.assign(t.ptr<float>(), t.ptr<float>() + e.rows * dim);
  return e;
}

SearchHit to_hit(const index::SearchHit& h) {
  SearchHit o;
  o.id = h.id;
  o.score = h.score;
  o.path = h.record.path;
  o.split = h.record.split;
  o.captions = h.record.captions;
  o.metadata_json = index::hit_json(h, 0).dump();
  return o;
}

}  // namespace

std::string version() { return CLIPKIT_VERSION; }

struct Model::Impl {
  std::unique_ptr<pipeline::Embedder> emb;
  pipeline::EmbedOptions eo;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& model, const ModelOptions& o) {
  if (o.threads < 0) fail("ModelOptions.threads must be >= 0, got {}", o.threads);
  if (o.batch_size < 1) fail("ModelOptions.batch_size must be >= 1, got {}", o.batch_size);
  set_num_threads(o.threads);
  auto impl = std::make_unique<Impl>();
  impl->emb = pipeline::Embedder::load(model, {o.bf16 ? backend::Precision::BF16 : backend::Precision::F32});
  impl->eo.batch_size = o.batch_size;
  impl->eo.normalize = o.normalize;
  return Model(std::move(impl));
}

std::string Model::folder() const { return impl_->emb->model().dir(); }
std::string Model::architecture() const { return impl_->emb->model().architecture(); }
int64_t Model::dim() const { return impl_->emb->dim(); }
int Model::image_size() const { return impl_->emb->model().image_size(); }
float Model::logit_scale() const { return impl_->emb->model().logit_scale(); }

Embeddings Model::embed_texts(const std::vector<std::string>& texts) const {
  return to_embeddings(impl_->emb->embed_texts(texts, impl_->eo), dim());
}

Embeddings Model::embed_images(const std::vector<std::string>& paths, std::vector<SkippedFile>* skipped) const {
  std::vector<int64_t> kept;
  std::vector<pipeline::SkippedInput> sk;
  Tensor t = impl_->emb->embed_image_files(paths, impl_->eo, &kept, &sk);
  if (!skipped && !sk.empty()) throw Error(sk[0].reason);
  if (skipped)
    for (auto& s : sk) skipped->push_back({s.source, s.reason});
  return to_embeddings(t, dim());
}

Embeddings Model::embed_pixels(const std::vector<float>& pixels, int64_t n) const {
  const int64_t S = image_size();
  if (S == 0) fail("{}: this model has no vision tower", folder());
  if (n < 0 || static_cast<int64_t>(pixels.size()) != n * 3 * S * S)
    fail("embed_pixels: {} floats for {} images of 3x{}x{}", pixels.size(), n, S, S);
  return to_embeddings(impl_->emb->embed_pixels(pixels.data(), n, impl_->eo), dim());
}

std::vector<std::vector<int32_t>> Model::tokenize(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int32_t>> out;
  for (auto& e : impl_->emb->tokenizer().encode_batch(texts)) out.push_back(std::move(e.ids));
  return out;
}

std::vector<float> Model::preprocess(const std::string& image_path) const {
  if (image_size() == 0) fail("{}: this model has no vision tower", folder());
  const auto& c = impl_->emb->preprocess_config();
  std::vector<float> out(static_cast<size_t>(3) * c.crop_h * c.crop_w);
  image::load_and_preprocess(image_path, c, out.data());
  return out;
}

struct Index::Impl {
  std::unique_ptr<index::Library> lib;
};

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

Index Index::open(const std::string& dir) {
  auto impl = std::make_unique<Impl>();
  impl->lib = index::Library::open(dir);
  return Index(std::move(impl));
}

int64_t Index::size() const { return impl_->lib->info().count; }
int64_t Index::dim() const { return impl_->lib->info().dim; }
std::string Index::model_folder() const { return impl_->lib->model().dir; }

std::vector<SearchHit> Index::search(const float* query, int64_t k, const SearchFilter& f) const {
  if (k < 1) fail("search: k must be >= 1, got {}", k);
  index::Filter filter;
  filter.split = f.split;
  filter.folder = f.folder;
  std::vector<SearchHit> out;
  for (auto& h : impl_->lib->search(query, k, filter)) out.push_back(to_hit(h));
  return out;
}

std::vector<SearchHit> Index::search_text(const Model& model, const std::string& text, int64_t k,
                                          const SearchFilter& f) const {
  impl_->lib->check_model(pipeline::model_identity(*model.impl_->emb));
  if (!model.impl_->eo.normalize) fail("search_text: the model was loaded with normalize = false");
  Tensor q = model.impl_->emb->embed_texts({text}, model.impl_->eo);
  return search(q.ptr<float>(), k, f);
}

}  // namespace clipkit
