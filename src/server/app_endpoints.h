// The applications over HTTP: POST /v1/classify, /v1/retrieve, /v1/dedup and /v1/video. The
// transport (server.cpp) parses the request into a JSON object, turns the image or query it names
// into an embedding through its batching queue, saves an uploaded video to a temp file, and maps
// ApiError to a status; these handlers hold the application logic and build the JSON answers.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/encoder.h"
#include "index/library.h"

namespace clipkit::server {

struct AppLimits {
  int max_labels = 256;
  int max_templates = 32;
  int64_t max_k = 1000;
  int video_short_side = 224;  // frames are scaled to this shorter side before preprocessing
};

class AppEndpoints {
 public:
  // `enc` embeds through the server's model queue; lib is the served index.
  AppEndpoints(const index::Library& lib, const apps::Encoder& enc, AppLimits l) : lib_(lib), enc_(enc), l_(l) {}

  // {"labels": [..] | "a,b", "templates"?: [..], "multi_label"?: bool, "threshold"?: p,
  //  "thresholds"?: {label: p}} and the image's embedding [1, D]
  // -> {"scores": {label: p}, "labels": [chosen], "similarities": {label: cosine}}
  nlohmann::json classify(const nlohmann::json& body, const Tensor& image) const;

  // q [1, D] -> apps::retrieve's JSON: {"query", "results": [{"rank", "path", "score", "caption",
  // "metadata", "url", "image"?}], "content": [...]}. Body: "k", "filter" ({split, folder, video}, in
  // the index search), "filters" (["key=value", ...] on the results), "min_score", "thumbnails",
  // "thumb_size".
  nlohmann::json retrieve(const nlohmann::json& body, const Tensor& q, const std::string& query) const;

  // Is this image already in the library? Candidates above "threshold" (default 0.95) among the "k"
  // (default 20) nearest, each re-scored exactly and checked byte for byte:
  // {"threshold", "duplicates": [{"id", "path", "score", "exact"}], "exact_duplicates": n}
  // self_id: the query is this indexed image (it is not its own duplicate).
  nlohmann::json dedup_image(const nlohmann::json& body, const Tensor& image, const std::string& bytes,
                             int64_t self_id = -1) const;

  // The whole library (its stored vectors): the `clipkit dedup --report` JSON contract.
  nlohmann::json dedup_library(const nlohmann::json& body) const;

  // A video file saved by the transport: `clipkit video --json`'s answer. Body: "labels",
  // "templates", "query", "every" | "fps" | "scenes", "scene_threshold", "smooth", "top_k", "min_gap".
  nlohmann::json video(const nlohmann::json& body, const std::string& path) const;

 private:
  const index::Library& lib_;
  const apps::Encoder& enc_;
  AppLimits l_;
};

}  // namespace clipkit::server
