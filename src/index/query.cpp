#include "index/query.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace clipkit::index {

std::unique_ptr<pipeline::Embedder> load_query_model(const Library& lib, const std::string& model_dir,
                                                     const model::LoadOptions& o) {
  const std::string dir = model_dir.empty() ? lib.model().dir : model_dir;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "config.json"))
    fail("{}: the index's model folder is missing (pass --model with the same checkpoint)", dir);
  lib.check_model(pipeline::model_identity(dir));  // cheap: before loading the weights
  auto e = pipeline::Embedder::load(dir, o);
  if (!lib.model().image_backend.empty())  // image queries are preprocessed as the indexed images were
    e->set_image_backend(image::image_backend_from_name(lib.model().image_backend, lib.info().dir + "/index.json"));
  lib.check_model(pipeline::model_identity(*e));
  return e;
}

nlohmann::json hit_json(const SearchHit& h, int64_t rank) {
  nlohmann::json j = {{"rank", rank}, {"id", h.id}, {"path", h.record.path}, {"score", h.score}};
  const nlohmann::json meta = h.record.to_json();
  for (auto it = meta.begin(); it != meta.end(); ++it)
    if (!j.contains(it.key())) j[it.key()] = it.value();
  return j;
}

nlohmann::json results_json(const std::vector<SearchHit>& hits) {
  nlohmann::json r = nlohmann::json::array();
  for (size_t i = 0; i < hits.size(); ++i) r.push_back(hit_json(hits[i], static_cast<int64_t>(i) + 1));
  return {{"results", r}};
}

}  // namespace clipkit::index

namespace clipkit::index {

void load_embeddings(const std::string& dir, Tensor* x, std::vector<ImageRecord>* records,
                     pipeline::ModelIdentity* model) {
  auto s = pipeline::read_manifest(dir);
  if (!s.complete) fail("{}: the embedding run is not finished (run the same `clipkit embed` again to resume)", dir);
  *model = s.model;
  *x = Tensor::empty(DType::F32, {s.rows, s.dim});
  records->clear();
  int64_t r = 0;
  pipeline::for_each_shard(s, [&](const Tensor& t, const std::vector<nlohmann::json>& rows) {
    if (r + t.dim(0) > s.rows) fail("{}: shards hold more rows than the manifest says", dir);
    std::memcpy(x->ptr<float>() + r * s.dim, t.data, t.nbytes());
    r += t.dim(0);
    for (auto& j : rows) records->push_back(ImageRecord::from_json(j));
  });
  if (r != s.rows) fail("{}: shards hold {} rows, the manifest says {}", dir, r, s.rows);
}

}  // namespace clipkit::index
