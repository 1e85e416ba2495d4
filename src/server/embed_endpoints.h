// POST /v1/embed/text, /v1/embed/image and /v1/compare: embeddings and zero-shot scores of what
// the request carries.
#pragma once
#include <httplib.h>

#include "server/service.h"

namespace clipkit::server {

class EmbedEndpoints {
 public:
  explicit EmbedEndpoints(const Service& s) : s_(s) {}
  // {"texts": [...]} -> {"embeddings": [[...], ...]}
  void embed_text(const httplib::Request& req, httplib::Response& res) const;
  // multipart "image" or {"image_base64"} -> {"embeddings": [[...]]}
  void embed_image(const httplib::Request& req, httplib::Response& res) const;
  // {"image_base64", "prompts"} -> {"scores" (softmax), "similarities" (cosines), "prompts"}
  void compare(const httplib::Request& req, httplib::Response& res) const;

 private:
  const Service& s_;
};

}  // namespace clipkit::server
