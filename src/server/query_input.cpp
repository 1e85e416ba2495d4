#include "server/query_input.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "server/api_error.h"
#include "server/json_http.h"

namespace clipkit::server {

QueryInput query_input(const Service& s, const httplib::Request& req, const nlohmann::json& body, bool allow_text) {
  const bool multipart_image = req.is_multipart_form_data() && req.has_file("image");
  const int given = (allow_text && body.contains("text")) + body.contains("image_base64") + body.contains("image_id") +
                    multipart_image;
  if (given != 1)
    throw ApiError(400, allow_text ? "give exactly one of \"text\", \"image_base64\", \"image_id\" (or multipart \"image\")"
                                   : "give exactly one of \"image_base64\", \"image_id\" (or multipart \"image\")");
  QueryInput q;
  if (allow_text && body.contains("text")) {
    if (!body["text"].is_string() || body["text"].get<std::string>().empty())
      throw ApiError(400, "\"text\" must be a non-empty string");
    q.query = body["text"].get<std::string>();
    q.embedding = s.queue.embed_texts({q.query});
    return q;
  }
  if (body.contains("image_id")) {
    if (!body["image_id"].is_number_integer()) throw ApiError(400, "\"image_id\" must be an integer");
    index::ImageRecord r;
    if (!s.libs.current()->get(body["image_id"].get<int64_t>(), &r)) throw ApiError(404, "no image with that id");
    try {
      q.bytes = read_file(r.path);
    } catch (const Error&) {
      throw ApiError(404, "the indexed file is no longer readable");
    }
    q.id = r.id;
    q.query = "image:" + std::to_string(r.id);
    q.embedding = s.queue.embed_image_bytes(q.bytes, "image " + std::to_string(r.id));
    return q;
  }
  q.bytes = upload_bytes(req, &body, "image");
  q.query = "image:upload";
  q.embedding = s.queue.embed_image_bytes(q.bytes, "upload");
  return q;
}

}  // namespace clipkit::server
