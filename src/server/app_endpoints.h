// The applications over HTTP: POST /v1/classify, /v1/retrieve, /v1/dedup and /v1/video. Each
// reads the request's parameters (JSON body or form fields), turns the image or query it names
// into an embedding through the model queue (an uploaded video goes to a private temp file for
// FFmpeg), and answers with the JSON the matching CLI command prints.
#pragma once
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/service.h"

namespace clipkit::server {

struct AppLimits {
  int max_labels = 256;
  int max_templates = 32;
  int64_t max_k = 1000;
  int video_short_side = 224;  // frames are scaled to this shorter side before preprocessing
  int64_t max_video_pixels = 0;  // videos with larger frames are refused (0 = no limit)
};

class AppEndpoints {
 public:
  AppEndpoints(const Service& s, AppLimits l) : s_(s), l_(l) {}

  // An image and {"labels": [..] | "a,b", "templates"?: [..], "multi_label"?: bool, "threshold"?: p,
  //  "thresholds"?: {label: p}} -> {"scores": {label: p}, "labels": [chosen], "similarities": {label: cosine}}
  void classify(const httplib::Request& req, httplib::Response& res) const;

  // A text or image query -> apps::retrieve's JSON: {"query", "results": [{"rank", "path", "score",
  // "caption", "metadata", "url", "image"?}], "content": [...]}. Body: "k", "filter" ({split, folder,
  // video}, in the index search), "filters" (["key=value", ...] on the results), "min_score",
  // "thumbnails", "thumb_size".
  void retrieve(const httplib::Request& req, httplib::Response& res) const;

  // With an image: is it already in the library? Candidates above "threshold" (default 0.95) among
  // the "k" (default 20) nearest, each re-scored exactly and checked byte for byte:
  // {"threshold", "duplicates": [{"id", "path", "score", "exact"}], "exact_duplicates": n}.
  // Without: the whole library (its stored vectors), the `clipkit dedup --report` JSON contract.
  void dedup(const httplib::Request& req, httplib::Response& res) const;

  // An uploaded video -> `clipkit video --json`'s answer. Body: "labels", "templates", "query",
  // "every" | "fps" | "scenes", "scene_threshold", "smooth", "top_k", "min_gap".
  void video(const httplib::Request& req, httplib::Response& res) const;

 private:
  nlohmann::json dedup_image(const nlohmann::json& body, const Tensor& image, const std::string& bytes,
                             int64_t self_id) const;
  nlohmann::json dedup_library(const nlohmann::json& body) const;
  nlohmann::json video_timeline(const nlohmann::json& body, const std::string& path) const;

  const Service& s_;
  AppLimits l_;
};

}  // namespace clipkit::server
