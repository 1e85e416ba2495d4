// POST /v1/search (by text, uploaded image or indexed image; index filters) and
// GET /v1/images/{id} (an indexed file, by numeric id only).
#pragma once
#include <httplib.h>

#include "server/service.h"

namespace clipkit::server {

class SearchEndpoints {
 public:
  explicit SearchEndpoints(const Service& s) : s_(s) {}
  void search(const httplib::Request& req, httplib::Response& res) const;
  void image(const httplib::Request& req, httplib::Response& res) const;

 private:
  const Service& s_;
};

}  // namespace clipkit::server
