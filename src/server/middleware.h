// What runs around every handler: the API key check on /v1/, errors turned into JSON responses
// (ApiError keeps its status, clipkit::Error is 400, anything else 500), the request metrics, and
// one OpenMP thread per request thread. Also the JSON bodies of the HTTP library's own errors.
#pragma once
#include <httplib.h>

#include <functional>
#include <string>

#include "server/metrics.h"
#include "server/server.h"

namespace clipkit::server {

class Middleware {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  Middleware(const ServerOptions& o, Metrics& metrics) : o_(o), metrics_(metrics) {}

  // `handler` behind the checks; `endpoint` names it in the metrics; v1: needs the API key.
  httplib::Server::Handler wrap(const std::string& endpoint, bool v1, Handler handler) const;
  // For httplib's set_error_handler: 404 no route, 413 too large, 400 bad request line.
  httplib::Server::HandlerResponse library_error(const httplib::Request& req, httplib::Response& res) const;

 private:
  const ServerOptions& o_;
  Metrics& metrics_;
};

}  // namespace clipkit::server
