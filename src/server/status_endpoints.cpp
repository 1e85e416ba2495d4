#include "server/status_endpoints.h"

#include "server/json_http.h"
#include "server/web_page.h"

namespace clipkit::server {

void StatusEndpoints::page(const httplib::Request&, httplib::Response& res) const {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self' "
                 "'unsafe-inline'");
  res.set_content(kWebPage, "text/html; charset=utf-8");
}

void StatusEndpoints::healthz(const httplib::Request&, httplib::Response& res) const {
  const auto lib = s_.libs.current();
  const auto& info = lib->info();
  send_json(res, 200, {{"status", "ok"}, {"images", info.count}, {"dim", info.dim}, {"model", lib->model().dir},
                       {"index", info.dir}, {"generation", info.generation}});
}

void StatusEndpoints::metrics(const httplib::Request&, httplib::Response& res) const {
  const auto lib = s_.libs.current();
  res.set_content(m_.render(lib->info().count, lib->info().generation), "text/plain; version=0.0.4");
}

}  // namespace clipkit::server
