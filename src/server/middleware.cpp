#include "server/middleware.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "server/api_error.h"
#include "server/http_transport.h"
#include "server/json_http.h"

namespace clipkit::server {

namespace {

// Compares without stopping at the first difference, so the time taken says nothing about the key.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

void log_internal(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "clipkit: serve: %s: internal error: %s\n", what.c_str(), detail.c_str());
}

// The JSON error for an exception from a handler or a check.
void answer_exception(const std::string& where, httplib::Response& res, std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const ApiError& e) {
    send_error(res, e.status, e.what(), e.param);
    if (e.retry_after_s > 0) {
      res.set_header("Retry-After", std::to_string(e.retry_after_s));
      if (auto* c = HttpTransport::current()) c->hold_next_s = e.retry_after_s;
    }
  } catch (const Error& e) {
    send_error(res, 400, e.what());
  } catch (const std::bad_alloc&) {
    log_internal(where, "out of memory");
    send_error(res, 503, "the server ran out of memory for this request; retry later");
  } catch (const std::exception& e) {
    log_internal(where, e.what());
    send_error(res, 500, "internal error (details in the server's log)");
  } catch (...) {
    log_internal(where, "unknown exception");
    send_error(res, 500, "internal error (details in the server's log)");
  }
}

}  // namespace

void Middleware::route(httplib::Server& http, const std::string& method, const std::string& path, bool numeric_id,
                       const std::string& endpoint, bool v1, Handler handler) {
  routes_.push_back({method, path, endpoint, numeric_id, v1});
  const std::string pattern = numeric_id ? path + "([0-9]{1,18})" : path;
  if (method == "GET") {
    http.Get(pattern, [this, endpoint, handler](const httplib::Request& req, httplib::Response& res) {
      run(endpoint, handler, req, res);
    });
  } else {
    http.Post(pattern, [this, endpoint, handler](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
      httplib::Request full = req;
      if (read_body(endpoint, req, reader, &full, res)) run(endpoint, handler, full, res);
    });
  }
}

void Middleware::install(httplib::Server& http) {
  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return before_body(req, res); });
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) { return library_error(req, res); }));
  http.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    answer_exception(req.method + " " + req.path, res, ep);
    metrics_.other(res.status);
  });
}

void Middleware::refuse(const httplib::Request& req, httplib::Response& res, int status, const std::string& message,
                        const std::string& endpoint) const {
  send_error(res, status, message);
  const bool body_coming = req.has_header("Transfer-Encoding") ||
                           (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
  if (body_coming) {  // the unread body would be taken for the next request
    res.set_header("Connection", "close");
    if (auto* c = HttpTransport::current()) c->close_after_response = true;
  }
  metrics_.request(endpoint, status, 0);
}

httplib::Server::HandlerResponse Middleware::before_body(const httplib::Request& req, httplib::Response& res) const {
  const std::string_view path = req.path;
  const Route* found = nullptr;
  bool path_known = false;
  for (const auto& r : routes_) {
    const bool match = r.numeric_id ? path.starts_with(r.path) : path == r.path;
    if (!match) continue;
    path_known = true;
    if (r.method == req.method || (r.method == "GET" && req.method == "HEAD")) found = &r;
  }
  if (!found) {
    refuse(req, res, path_known ? 405 : 404,
           path_known ? "method not allowed: " + req.method + " " + req.path
                      : "no such endpoint: " + req.method + " " + req.path,
           "other");
    return httplib::Server::HandlerResponse::Handled;
  }
  if (found->v1 && !o_.api_key.empty() &&
      !same_secret(req.get_header_value("Authorization"), "Bearer " + o_.api_key)) {
    res.set_header("WWW-Authenticate", "Bearer");
    refuse(req, res, 401, "missing or wrong API key (send \"Authorization: Bearer <key>\")", found->endpoint);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (found->numeric_id && !all_digits(path.substr(found->path.size()))) {
    refuse(req, res, 400, "images are addressed by numeric id only: " + found->path + "{id}", found->endpoint);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (req.has_header("Content-Length")) {
    const std::string v = req.get_header_value("Content-Length");
    const bool number = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
    if (!number) {
      refuse(req, res, 400, "Content-Length is not a number", found->endpoint);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (std::stoull(v) > o_.max_body_bytes) {
      refuse(req, res, 413, fmt::format("request body too large (limit {} bytes)", o_.max_body_bytes),
             found->endpoint);
      return httplib::Server::HandlerResponse::Handled;
    }
  }
  if (req.method == "POST" && req.get_header_value("Content-Type").starts_with("application/x-www-form-urlencoded")) {
    refuse(req, res, 415,
           "form-encoded bodies are not accepted: send JSON with \"Content-Type: application/json\", or a multipart form",
           found->endpoint);
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

bool Middleware::read_body(const std::string& endpoint, const httplib::Request& req,
                           const httplib::ContentReader& reader, httplib::Request* full, httplib::Response& res) const {
  size_t total = 0;
  int parts = 0;
  bool over = false, too_many = false;
  auto count = [&](size_t n) {
    total += n;
    over = total > o_.max_body_bytes;
    return !over;
  };
  bool ok;
  if (req.is_multipart_form_data()) {
    httplib::MultipartFormDataMap::iterator cur = full->files.end();
    ok = reader(
        [&](const httplib::MultipartFormData& f) {
          if (++parts > o_.max_form_fields) {
            too_many = true;
            return false;
          }
          cur = full->files.emplace(f.name, f);
          return true;
        },
        [&](const char* d, size_t n) {
          if (!count(n) || cur == full->files.end()) return false;
          cur->second.content.append(d, n);
          return true;
        });
  } else {
    ok = reader([&](const char* d, size_t n) {
      if (!count(n)) return false;
      full->body.append(d, n);
      return true;
    });
  }
  if (ok) return true;
  const auto* c = HttpTransport::current();
  const auto stop = c ? c->stop : ConnectionState::Stop::None;
  int status = 400;
  std::string msg = "the request body could not be read (malformed chunked encoding, compression or multipart form?)";
  if (over || stop == ConnectionState::Stop::BodyTooLarge) {
    status = 413;
    msg = fmt::format("request body too large (limit {} bytes)", o_.max_body_bytes);
  } else if (too_many) {
    status = 413;
    msg = fmt::format("the multipart form has more than {} fields", o_.max_form_fields);
  } else if (stop == ConnectionState::Stop::BodyTimeout) {
    status = 408;
    msg = fmt::format("the request body did not arrive within {} s", o_.body_timeout_s);
  }
  send_error(res, status, msg);
  res.set_header("Connection", "close");  // part of the body may still be unread
  if (auto* cs = HttpTransport::current()) cs->close_after_response = true;
  metrics_.request(endpoint, status, 0);
  return false;
}

void Middleware::run(const std::string& endpoint, const Handler& handler, const httplib::Request& req,
                     httplib::Response& res) const {
  omp_set_num_threads(1);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    handler(req, res);
  } catch (...) {
    answer_exception(endpoint, res, std::current_exception());
  }
  metrics_.request(endpoint, res.status == -1 ? 200 : res.status,  // -1: httplib sends 200
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

httplib::Server::HandlerResponse Middleware::library_error(const httplib::Request& req, httplib::Response& res) const {
  // runs while the answer is written, outside the library's exception handling: must not throw
  try {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const auto* c = HttpTransport::current();
    const auto stop = c ? c->stop : ConnectionState::Stop::None;
    std::string msg;
    if (stop == ConnectionState::Stop::HeaderTimeout) {
      res.status = 408;
      msg = fmt::format("the request line and headers did not arrive within {} s", o_.header_timeout_s);
    } else if (stop == ConnectionState::Stop::BodyTimeout) {
      res.status = 408;
      msg = fmt::format("the request body did not arrive within {} s", o_.body_timeout_s);
    } else if (stop == ConnectionState::Stop::BodyTooLarge || res.status == 413) {
      res.status = 413;
      msg = fmt::format("request body too large (limit {} bytes)", o_.max_body_bytes);
    } else if (res.status == 404) {
      msg = "no such endpoint: " + req.method + " " + req.path;
    } else if (res.status == 414) {
      msg = "the request line is too long";
    } else if (res.status == 416) {
      msg = "bad Range header";
    } else {
      msg = "malformed HTTP request";
    }
    send_error(res, res.status, msg);
    // the library gave up on this request: whatever follows on the connection cannot be trusted
    res.set_header("Connection", "close");
    if (auto* cs = HttpTransport::current()) cs->close_after_response = true;
    metrics_.other(res.status);
  } catch (...) {
  }
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace clipkit::server
