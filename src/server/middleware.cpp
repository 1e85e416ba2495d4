#include "server/middleware.h"

#include <omp.h>

#include <chrono>

#include "core/error.h"
#include "server/api_error.h"
#include "server/json_http.h"

namespace clipkit::server {

httplib::Server::Handler Middleware::wrap(const std::string& endpoint, bool v1, Handler handler) const {
  return [this, endpoint, v1, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    omp_set_num_threads(1);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      if (v1 && !o_.api_key.empty()) {
        const std::string want = "Bearer " + o_.api_key;
        if (req.get_header_value("Authorization") != want) {
          res.set_header("WWW-Authenticate", "Bearer");
          throw ApiError(401, "missing or wrong API key (send \"Authorization: Bearer <key>\")");
        }
      }
      handler(req, res);
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what());
    } catch (const Error& e) {
      send_error(res, 400, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, e.what());
    }
    metrics_.request(endpoint, res.status,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
}

httplib::Server::HandlerResponse Middleware::library_error(const httplib::Request& req, httplib::Response& res) const {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  const bool form = req.get_header_value("Content-Type").find("x-www-form-urlencoded") != std::string::npos;
  std::string msg = res.status == 413 && form
                        ? "form-encoded bodies are limited to 8 KiB: send JSON with \"Content-Type: application/json\""
                    : res.status == 413 ? fmt::format("request body too large (limit {} bytes)", o_.max_body_bytes)
                    : res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
                    : res.status == 405 ? "method not allowed"
                                        : "bad request";
  send_error(res, res.status, msg);
  metrics_.other(res.status);
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace clipkit::server
