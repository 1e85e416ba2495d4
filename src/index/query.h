// Shared by `clipkit search` and the service: the model that may query a library, and the JSON
// shape of results ({"results": [{"rank", "id", "path", "score", ...metadata}]}, best first).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "index/library.h"
#include "pipeline/embedder.h"

namespace clipkit::index {

// Loads the library's model (model_dir = "" -> the folder recorded in index.json), with the image
// backend recorded there, and refuses a model other than the one that built the library (Error
// names both).
std::unique_ptr<pipeline::Embedder> load_query_model(const Library& lib, const std::string& model_dir,
                                                     const model::LoadOptions& o = {});

nlohmann::json hit_json(const SearchHit& h, int64_t rank);  // rank from 1
nlohmann::json results_json(const std::vector<SearchHit>& hits);

}  // namespace clipkit::index

namespace clipkit::index {

// A finished embeddings folder (clipkit embed --shards / bulk_embed) as rows + records.
void load_embeddings(const std::string& dir, Tensor* x, std::vector<ImageRecord>* records,
                     pipeline::ModelIdentity* model);

}  // namespace clipkit::index
