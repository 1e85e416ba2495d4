#include "server/search_endpoints.h"

#include <filesystem>

#include "core/error.h"
#include "image/image.h"
#include "index/query.h"
#include "io/atomic_file.h"
#include "server/api_error.h"
#include "server/json_http.h"
#include "server/query_input.h"

namespace clipkit::server {

using json = nlohmann::json;

namespace {

const char* mime_of(image::Format f) {
  switch (f) {
    case image::Format::Jpeg: return "image/jpeg";
    case image::Format::Png: return "image/png";
    case image::Format::Webp: return "image/webp";
    case image::Format::Gif: return "image/gif";
    case image::Format::Bmp: return "image/bmp";
    default: return "application/octet-stream";
  }
}

}  // namespace

void SearchEndpoints::search(const httplib::Request& req, httplib::Response& res) const {
  json body = request_params(req);
  const int64_t k = int_field(body, "k", 10, 1, s_.o.max_k);
  index::Filter f;
  try {
    f = index::Filter::from_json(body.value("filter", json()));
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  QueryInput q = query_input(s_, req, body, /*allow_text=*/true);
  send_json(res, 200, index::results_json(s_.libs.current()->search(q.embedding.ptr<float>(), k, f)));
}

void SearchEndpoints::image(const httplib::Request& req, httplib::Response& res) const {
  const std::string s = req.matches[1];  // 1 to 18 digits (the route's pattern)
  index::ImageRecord r;
  if (!s_.libs.current()->get(std::stoll(s), &r)) throw ApiError(404, "no image with that id");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(r.path, ec)) throw ApiError(404, "the indexed file is no longer there");
  std::string bytes;
  try {
    bytes = read_file(r.path);
  } catch (const Error&) {
    throw ApiError(404, "the indexed file is no longer readable");
  }
  auto fmt = image::sniff_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  res.status = 200;
  res.set_header("Cache-Control", "private, max-age=3600");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::move(bytes), mime_of(fmt));
}

}  // namespace clipkit::server
