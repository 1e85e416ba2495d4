#include "server/json_http.h"

#include "core/base64.h"
#include "server/api_error.h"

namespace clipkit::server {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, {{"error", {{"status", status}, {"message", msg}}}});
}

json parse_body(const httplib::Request& req) {
  if (req.body.empty()) throw ApiError(400, "request body is empty; send a JSON object");
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "request body must be a JSON object");
  return j;
}

json request_params(const httplib::Request& req) {
  if (!req.is_multipart_form_data()) return parse_body(req);
  json j = json::object();
  for (auto& [name, f] : req.files) {
    if (name == "image" || name == "video") continue;
    json v = name == "text" || name == "query" ? json(json::value_t::discarded) : json::parse(f.content, nullptr, false);
    j[name] = v.is_discarded() ? json(f.content) : v;
  }
  return j;
}

std::string upload_bytes(const httplib::Request& req, const json* body, const std::string& field) {
  if (req.is_multipart_form_data()) {
    if (!req.has_file(field)) throw ApiError(400, "multipart request has no \"" + field + "\" field");
    return req.get_file_value(field).content;
  }
  json parsed;
  if (!body) {
    parsed = parse_body(req);
    body = &parsed;
  }
  const std::string key = field + "_base64";
  if (!body->contains(key) || !(*body)[key].is_string())
    throw ApiError(400, "send the " + field + " as multipart field \"" + field + "\" or JSON {\"" + key + "\": \"...\"}");
  std::string bytes;
  if (!base64_decode((*body)[key].get<std::string>(), &bytes)) throw ApiError(400, "\"" + key + "\" is not valid base64");
  return bytes;
}

}  // namespace clipkit::server
