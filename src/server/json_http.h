// JSON in and out of HTTP: a request's JSON body or multipart form fields as one JSON object, the
// image or video bytes it carries, and JSON responses. Errors are {"error": {"status", "message",
// "type", "param", "code"}}: clipkit's two fields and OpenAI's four, so OpenAI clients read them too.
// Every string a request brings must be UTF-8 text (a 400 names the field otherwise); responses are
// written with json_text, which never fails.
#pragma once
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

namespace clipkit::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& j);
// The error object of every error response; param: the request field at fault ("" = null).
nlohmann::json error_body(int status, const std::string& message, const std::string& param = "");
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "");

// The body as a JSON object; ApiError 400 when empty, not JSON (or nested too deep), not an
// object, or holding a string that is not UTF-8.
nlohmann::json parse_body(const httplib::Request& req);

// The request's parameters as one JSON object: the JSON body, or a multipart form's fields (the
// "image"/"video" files excluded; a value that parses as JSON is taken as JSON, except "text" and
// "query", which stay strings).
nlohmann::json request_params(const httplib::Request& req);

// The bytes of the upload named `field` ("image" or "video"): multipart field `field`, or JSON
// "<field>_base64" (plain or a data: URL) from `body` (parsed from the request when null).
std::string upload_bytes(const httplib::Request& req, const nlohmann::json* body, const std::string& field);

}  // namespace clipkit::server
