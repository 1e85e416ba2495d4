#include "server/app_endpoints.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "apps/classify.h"
#include "apps/dedup.h"
#include "apps/library_apps.h"
#include "apps/retrieve.h"
#include "apps/video.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "server/api_error.h"
#include "server/json_http.h"
#include "server/query_input.h"

namespace clipkit::server {

using json = nlohmann::json;

namespace {

apps::ZeroShotOptions zero_shot_options(const json& body, const AppLimits& l) {
  apps::ZeroShotOptions zo;
  if (body.contains("templates")) {
    zo.templates = string_list(body, "templates", l.max_templates);
    for (auto& t : zo.templates)
      if (t.find("{}") == std::string::npos) throw ApiError(400, fmt::format("template \"{}\" has no {{}}", t));
  }
  zo.multi_label = bool_field(body, "multi_label", false);
  zo.threshold = number_field(body, "threshold", 0.5, 0, 1);
  if (body.contains("thresholds")) {
    if (!zo.multi_label) throw ApiError(400, "\"thresholds\" needs \"multi_label\": true");
    if (!body["thresholds"].is_object()) throw ApiError(400, "\"thresholds\" must be an object {label: threshold}");
    for (auto& [k, v] : body["thresholds"].items()) {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
        throw ApiError(400, fmt::format("\"thresholds\".\"{}\" must be a number in [0, 1]", k));
      zo.label_thresholds[k] = v.get<double>();
    }
  }
  return zo;
}

std::unique_ptr<apps::ZeroShotClassifier> classifier(const apps::Encoder& enc, const json& body, const AppLimits& l) {
  auto labels = string_list(body, "labels", l.max_labels, /*allow_csv=*/true);
  auto zo = zero_shot_options(body, l);
  for (auto& [k, v] : zo.label_thresholds)
    if (std::find(labels.begin(), labels.end(), k) == labels.end())
      throw ApiError(400, fmt::format("\"thresholds\" names \"{}\", which is not one of the labels", k));
  return std::make_unique<apps::ZeroShotClassifier>(enc, std::move(labels), std::move(zo));
}

}  // namespace

void AppEndpoints::classify(const httplib::Request& req, httplib::Response& res) const {
  json body = request_params(req);
  QueryInput q = query_input(s_, req, body, /*allow_text=*/false);
  auto clf = classifier(s_.queue.encoder(), body, l_);
  auto r = clf->classify(q.embedding.ptr<float>());
  json scores = json::object(), sims = json::object(), chosen = json::array();
  for (size_t i = 0; i < clf->labels().size(); ++i) {
    scores[clf->labels()[i]] = r.scores[i];
    sims[clf->labels()[i]] = r.cosine[i];
  }
  for (int c : r.chosen) chosen.push_back(clf->labels()[static_cast<size_t>(c)]);
  send_json(res, 200, {{"scores", scores}, {"labels", chosen}, {"similarities", sims},
                       {"mode", clf->options().multi_label ? "multi_label" : "single_label"}});
}

void AppEndpoints::retrieve(const httplib::Request& req, httplib::Response& res) const {
  json body = request_params(req);
  QueryInput q = query_input(s_, req, body, /*allow_text=*/true);
  apps::RetrieveOptions ro;
  ro.k = static_cast<int>(int_field(body, "k", 5, 1, l_.max_k));
  ro.min_score = number_field(body, "min_score", -2, -2, 2);
  ro.thumbnails = bool_field(body, "thumbnails", false);
  ro.thumb_size = static_cast<int>(int_field(body, "thumb_size", 224, 16, 1024));
  if (body.contains("filters"))
    for (auto& f : string_list(body, "filters", 64)) ro.filters.push_back(apps::Filter::parse(f));  // Error -> 400
  index::Filter f = index::Filter::from_json(body.value("filter", json()));
  json out = apps::retrieve_from_library(*s_.libs.current(), q.query, q.embedding.ptr<float>(), ro, f);
  for (auto& r : out["results"])
    if (r["metadata"].contains("id")) r["url"] = fmt::format("/v1/images/{}", r["metadata"]["id"].get<int64_t>());
  send_json(res, 200, out);
}

void AppEndpoints::dedup(const httplib::Request& req, httplib::Response& res) const {
  json body = request_params(req);
  const bool has_image = body.contains("image_base64") || body.contains("image_id") ||
                         (req.is_multipart_form_data() && req.has_file("image"));
  if (!has_image) {  // the whole library
    send_json(res, 200, dedup_library(body));
    return;
  }
  QueryInput q = query_input(s_, req, body, /*allow_text=*/false);
  send_json(res, 200, dedup_image(body, q.embedding, q.bytes, q.id));
}

json AppEndpoints::dedup_image(const json& body, const Tensor& image, const std::string& bytes, int64_t self_id) const {
  const double threshold = number_field(body, "threshold", apps::kDefaultDedupThreshold, -1, 1);
  const int64_t k = int_field(body, "k", 20, 1, l_.max_k);
  json dups = json::array();
  int64_t exact = 0;
  for (auto& h : s_.libs.current()->search(image.ptr<float>(), k + (self_id >= 0))) {
    if (h.id == self_id) continue;
    bool same = false;  // byte-identical to the upload: an exact duplicate whatever the score
    std::error_code ec;
    if (std::filesystem::file_size(h.record.path, ec) == bytes.size() && !ec) {
      try {
        same = read_file(h.record.path) == bytes;
      } catch (const std::exception&) {
      }
    }
    if (!same && h.score < threshold) continue;
    exact += same;
    dups.push_back({{"id", h.id}, {"path", h.record.path}, {"score", h.score}, {"exact", same},
                    {"url", fmt::format("/v1/images/{}", h.id)}});
  }
  return {{"threshold", threshold}, {"duplicates", dups}, {"exact_duplicates", exact}, {"searched", k}};
}

json AppEndpoints::dedup_library(const json& body) const {
  apps::DedupOptions o;
  o.threshold = number_field(body, "threshold", apps::kDefaultDedupThreshold, -1, 1);
  std::vector<std::string> gone;
  auto scan = apps::scan_library(*s_.libs.current(), nullptr, &gone);
  const auto& items = scan.items;
  auto r = apps::find_duplicates(items, scan.emb.ptr<float>(), scan.emb.dim(1), o, [&](int64_t a, int64_t b) {
    return apps::files_equal(items[static_cast<size_t>(a)].path, items[static_cast<size_t>(b)].path);
  });
  json j = apps::dedup_report_json(r, items, o.threshold);
  j["unreadable"] = gone;
  return j;
}

void AppEndpoints::video(const httplib::Request& req, httplib::Response& res) const {
  json body = request_params(req);
  std::string bytes = upload_bytes(req, &body, "video");
  if (bytes.empty()) throw ApiError(400, "the video is empty");
  // FFmpeg reads files: the upload goes to a private temp file, removed when done.
  std::string tmpl = (std::filesystem::temp_directory_path() / "clipkit-video-XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw ApiError(500, "cannot create a temporary file for the video");
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } guard{tmpl};
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  if (!ok) throw ApiError(500, "cannot write the video to a temporary file");
  send_json(res, 200, video_timeline(body, tmpl));
}

json AppEndpoints::video_timeline(const json& body, const std::string& path) const {
  apps::VideoSampling s;
  const int given = body.contains("every") + body.contains("fps") + bool_field(body, "scenes", false);
  if (given > 1) throw ApiError(400, "give at most one of \"every\", \"fps\", \"scenes\"");
  s.scenes = bool_field(body, "scenes", false);
  s.every = body.contains("fps") ? 1.0 / number_field(body, "fps", 1, 1e-3, 120) : number_field(body, "every", 1, 1e-3, 3600);
  s.scene_threshold = number_field(body, "scene_threshold", apps::kDefaultSceneThreshold, 1e-3, 0.999);
  s.max_short_side = l_.video_short_side;
  s.max_pixels = l_.max_video_pixels;
  std::unique_ptr<apps::ZeroShotClassifier> clf;
  if (body.contains("labels")) clf = classifier(s_.queue.encoder(), body, l_);
  std::string query;
  std::vector<float> q;
  if (body.contains("query")) {
    if (!body["query"].is_string() || body["query"].get<std::string>().empty())
      throw ApiError(400, "\"query\" must be a non-empty string");
    query = body["query"].get<std::string>();
    Tensor t = s_.queue.encoder().encode_texts({query});
    q.assign(t.ptr<float>(), t.ptr<float>() + t.dim(1));
  }
  if (!clf && q.empty()) throw ApiError(400, "nothing to look for: give \"labels\" and/or \"query\"");
  apps::TimelineOptions to;
  to.smooth = static_cast<int>(int_field(body, "smooth", 3, 1, 1000));
  to.midpoint_boundaries = !s.scenes;
  const int top_k = static_cast<int>(int_field(body, "top_k", 5, 1, 1000));
  const double min_gap = number_field(body, "min_gap", 0, 0, 1e6);
  apps::VideoFrames v;
  try {
    v = apps::embed_video(path, s_.queue.encoder(), s);
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("cannot read the video: {}", e.what()));
  }
  auto a = apps::analyze_video(v, clf.get(), q.empty() ? nullptr : q.data(), query, to, top_k, min_gap);
  return apps::video_json(v, a);
}

}  // namespace clipkit::server
