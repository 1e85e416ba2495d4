// What runs around every handler, in the order a request meets it:
//   1. before the body is read (httplib's pre-routing hook): the route table (unknown paths 404,
//      other methods 405), the API key on /v1/ (401), a declared Content-Length over the limit
//      (413) and form-encoded bodies (415) -- so none of these costs reading a body, and the
//      connection is closed after the answer when a body was on its way;
//   2. POST bodies are read here, counted as they arrive after any transfer or content decoding
//      (chunked, gzip, brotli): over max_body_bytes or max_form_fields is 413, a body that stops
//      arriving is 408 (the transport's deadline), a malformed one 400;
//   3. the handler, with one OpenMP thread per request thread; whatever it throws becomes a JSON
//      error (ApiError keeps its status, clipkit::Error is 400, out of memory 503, anything else
//      500 with the details in the server's log, not in the answer), and the request is counted
//      in the metrics with the status actually sent.
// The HTTP library's own errors (malformed requests, timeouts) get JSON bodies too.
#pragma once
#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/server.h"

namespace clipkit::server {

class Middleware {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  Middleware(const ServerOptions& o, Metrics& metrics) : o_(o), metrics_(metrics) {}

  // Serves `handler` for `method` ("GET" or "POST") at `path`; with numeric_id, at path + a numeric
  // id of 1 to 18 digits (req.matches[1]). `endpoint` names it in the metrics; v1: needs the key.
  void route(httplib::Server& http, const std::string& method, const std::string& path, bool numeric_id,
             const std::string& endpoint, bool v1, Handler handler);
  // The checks before the body, and the error and exception handlers.
  void install(httplib::Server& http);

 private:
  struct Route {
    std::string method, path, endpoint;
    bool numeric_id, v1;
  };
  httplib::Server::HandlerResponse before_body(const httplib::Request& req, httplib::Response& res) const;
  bool read_body(const std::string& endpoint, const httplib::Request& req, const httplib::ContentReader& reader,
                 httplib::Request* full, httplib::Response& res) const;
  void run(const std::string& endpoint, const Handler& handler, const httplib::Request& req,
           httplib::Response& res) const;
  httplib::Server::HandlerResponse library_error(const httplib::Request& req, httplib::Response& res) const;
  // An answer sent instead of reading the request's body: the connection closes after it.
  void refuse(const httplib::Request& req, httplib::Response& res, int status, const std::string& message,
              const std::string& endpoint) const;

  const ServerOptions& o_;
  Metrics& metrics_;
  std::vector<Route> routes_;
};

}  // namespace clipkit::server
