#include "server/embed_endpoints.h"

#include <cmath>

#include "server/api_error.h"
#include "server/json_http.h"

namespace clipkit::server {

using json = nlohmann::json;

namespace {

json rows_json(const Tensor& t) {
  json out = json::array();
  for (int64_t i = 0; i < t.dim(0); ++i)
    out.push_back(std::vector<float>(t.ptr<float>() + i * t.dim(1), t.ptr<float>() + (i + 1) * t.dim(1)));
  return out;
}

}  // namespace

void EmbedEndpoints::embed_text(const httplib::Request& req, httplib::Response& res) const {
  auto body = parse_body(req);
  auto texts = string_list(body, "texts", s_.o.max_texts);
  send_json(res, 200, {{"embeddings", rows_json(s_.queue.embed_texts(texts))}});
}

void EmbedEndpoints::embed_image(const httplib::Request& req, httplib::Response& res) const {
  send_json(res, 200, {{"embeddings", rows_json(s_.queue.embed_image_bytes(upload_bytes(req, nullptr, "image"), "upload"))}});
}

void EmbedEndpoints::compare(const httplib::Request& req, httplib::Response& res) const {
  auto body = parse_body(req);
  auto prompts = string_list(body, "prompts", s_.o.max_prompts);
  Tensor img = s_.queue.embed_image_bytes(upload_bytes(req, &body, "image"), "upload");
  Tensor txt = s_.queue.embed_texts(prompts);
  const int64_t D = img.dim(1), P = txt.dim(0);
  std::vector<double> cos(static_cast<size_t>(P)), logit(static_cast<size_t>(P));
  const double scale = std::exp(static_cast<double>(s_.queue.embedder().model().logit_scale()));
  double mx = -1e300;
  for (int64_t p = 0; p < P; ++p) {
    double s = 0;
    for (int64_t c = 0; c < D; ++c) s += static_cast<double>(img.ptr<float>()[c]) * txt.ptr<float>()[p * D + c];
    cos[static_cast<size_t>(p)] = s;
    logit[static_cast<size_t>(p)] = scale * s;
    mx = std::max(mx, logit[static_cast<size_t>(p)]);
  }
  double z = 0;
  for (auto& l : logit) z += std::exp(l - mx);
  json scores = json::array(), sims = json::array();
  for (int64_t p = 0; p < P; ++p) {
    scores.push_back(std::exp(logit[static_cast<size_t>(p)] - mx) / z);
    sims.push_back(cos[static_cast<size_t>(p)]);
  }
  send_json(res, 200, {{"scores", scores}, {"similarities", sims}, {"prompts", prompts}});
}

}  // namespace clipkit::server
