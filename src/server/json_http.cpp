#include "server/json_http.h"

#include "core/base64.h"
#include "core/json.h"
#include "server/api_error.h"

namespace clipkit::server {

using json = nlohmann::json;

namespace {

// The first string (key or value) in j that is not UTF-8, as a JSON pointer to it; "" when none.
std::string non_utf8_at(const json& j, const std::string& at = "") {
  if (j.is_string()) return valid_utf8(j.get_ref<const std::string&>()) ? "" : (at.empty() ? "/" : at);
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      if (auto p = non_utf8_at(j[i], at + "/" + std::to_string(i)); !p.empty()) return p;
  } else if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (!valid_utf8(k)) return at + "/(a key)";
      if (auto p = non_utf8_at(v, at + "/" + k); !p.empty()) return p;
    }
  }
  return "";
}

}  // namespace

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(json_text(j), "application/json");
}

json error_body(int status, const std::string& msg, const std::string& param) {
  // OpenAI's types: invalid_request_error for what the client can fix, authentication_error for a
  // missing or wrong key, server_error for the rest (a full queue is "overloaded", as OpenAI says)
  const char* type = status == 401 ? "authentication_error" : status < 500 ? "invalid_request_error" : "server_error";
  json code = nullptr;
  if (status == 401) code = "invalid_api_key";
  if (status == 503) code = "overloaded";
  return {{"error",
           {{"status", status}, {"message", msg}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code}}}};
}

void send_error(httplib::Response& res, int status, const std::string& msg, const std::string& param) {
  send_json(res, status, error_body(status, msg, param));
}

json parse_body(const httplib::Request& req) {
  if (req.body.empty()) throw ApiError(400, "request body is empty; send a JSON object");
  json j;
  std::string why;
  if (!try_parse_json(req.body, &j, &why))
    throw ApiError(400, why.find("nested deeper") != std::string::npos ? "request body: " + why
                                                                        : "request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "request body must be a JSON object");
  if (auto at = non_utf8_at(j); !at.empty())
    throw ApiError(400, "request body: the string at " + at + " is not UTF-8 text");
  return j;
}

json request_params(const httplib::Request& req) {
  if (!req.is_multipart_form_data()) return parse_body(req);
  json j = json::object();
  for (auto& [name, f] : req.files) {
    if (!valid_utf8(name)) throw ApiError(400, "a multipart field name is not UTF-8 text");
    if (name == "image" || name == "video") continue;
    if (!valid_utf8(f.content)) throw ApiError(400, "multipart field \"" + name + "\" is not UTF-8 text");
    json v;
    std::string why;
    const bool as_json = name != "text" && name != "query" && try_parse_json(f.content, &v, &why);
    if (!as_json && why.find("nested deeper") != std::string::npos)
      throw ApiError(400, "multipart field \"" + name + "\": " + why);
    j[name] = as_json ? std::move(v) : json(f.content);
  }
  if (auto at = non_utf8_at(j); !at.empty())
    throw ApiError(400, "multipart field " + at.substr(1) + " holds a string that is not UTF-8 text");
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
