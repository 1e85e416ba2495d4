// The query a search-like request names, as an embedding: exactly one of "text" (when allowed),
// "image_base64", "image_id" (an indexed image) or a multipart "image".
#pragma once
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "server/service.h"

namespace clipkit::server {

struct QueryInput {
  Tensor embedding;   // [1, D]
  std::string query;  // the text, or "image:upload" / "image:<id>"
  std::string bytes;  // the image's bytes (empty for text)
  int64_t id = -1;    // the indexed image's id, or -1
};

// body: the request's parameters (request_params). ApiError 400/404 on a bad or missing query.
QueryInput query_input(const Service& s, const httplib::Request& req, const nlohmann::json& body, bool allow_text);

}  // namespace clipkit::server
