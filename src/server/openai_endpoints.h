// POST /v1/embeddings: OpenAI's embeddings API, so that OpenAI SDK clients and RAG frameworks call
// clipkit without a custom client. {"model", "input": str | [str], "encoding_format":
// "float" | "base64", "dimensions", "user"} -> {"object": "list", "data": [{"object": "embedding",
// "index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}. An input that is a
// data URL of an image (data:image/jpeg;base64,...) is embedded by the vision tower, as
// multimodal embedding servers do; every other string is a text. Errors are OpenAI's error objects
// (json_http.h) with "param" naming the field.
#pragma once
#include <httplib.h>

#include "server/service.h"

namespace clipkit::server {

class OpenAiEndpoints {
 public:
  explicit OpenAiEndpoints(const Service& s) : s_(s) {}
  void embeddings(const httplib::Request& req, httplib::Response& res) const;

 private:
  const Service& s_;
};

}  // namespace clipkit::server
