// GET / (the search page), /healthz and /metrics: open without the API key.
#pragma once
#include <httplib.h>

#include "server/metrics.h"
#include "server/service.h"

namespace clipkit::server {

class StatusEndpoints {
 public:
  StatusEndpoints(const Service& s, const Metrics& m) : s_(s), m_(m) {}
  void page(const httplib::Request& req, httplib::Response& res) const;
  // {"status": "ok", "images", "dim", "model", "index"}
  void healthz(const httplib::Request& req, httplib::Response& res) const;
  void metrics(const httplib::Request& req, httplib::Response& res) const;

 private:
  const Service& s_;
  const Metrics& m_;
};

}  // namespace clipkit::server
