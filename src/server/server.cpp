// The service's assembly: the parts (server/*.h) built over one library and model, and the route
// table binding each endpoint to its handler behind the middleware.
#include "server/server.h"

#include <httplib.h>

#include "core/error.h"
#include "index/query.h"
#include "ops/precision.h"
#include "server/app_endpoints.h"
#include "server/embed_endpoints.h"
#include "server/embed_queue.h"
#include "server/metrics.h"
#include "server/middleware.h"
#include "server/search_endpoints.h"
#include "server/service.h"
#include "server/status_endpoints.h"

namespace clipkit::server {

namespace {

AppLimits app_limits(const ServerOptions& o, const pipeline::Embedder& emb) {
  AppLimits al;
  al.max_labels = o.max_prompts;
  al.max_k = o.max_k;
  const auto& pc = emb.preprocess_config();
  al.video_short_side = std::max(pc.shortest_edge, pc.crop_h);
  return al;
}

}  // namespace

struct Server::Impl {
  ServerOptions o;
  std::unique_ptr<index::Library> lib;
  std::unique_ptr<pipeline::Embedder> emb;
  Metrics metrics;
  EmbedQueue queue;
  Service service;
  Middleware mw;
  StatusEndpoints status;
  EmbedEndpoints embed;
  SearchEndpoints search;
  AppEndpoints apps;
  httplib::Server http;
  int bound_port = -1;

  explicit Impl(const ServerOptions& opts)
      : o(opts),
        lib(index::Library::open(o.index_dir)),
        emb(index::load_query_model(*lib, o.model_dir, {ops::precision_from_name(o.precision)})),
        queue(*emb, o.max_batch, o.model_threads, metrics),
        service{o, *lib, queue},
        mw(o, metrics),
        status(service, metrics),
        embed(service),
        search(service),
        apps(service, app_limits(o, *emb)) {
    routes();
  }

  template <typename Part>
  httplib::Server::Handler route(const std::string& endpoint, bool v1, const Part& part,
                                 void (Part::*fn)(const httplib::Request&, httplib::Response&) const) {
    return mw.wrap(endpoint, v1, [&part, fn](const httplib::Request& req, httplib::Response& res) { (part.*fn)(req, res); });
  }

  void routes() {
    http.set_payload_max_length(o.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    const int nthreads = std::max(1, o.http_threads);
    http.new_task_queue = [nthreads] { return new httplib::ThreadPool(static_cast<size_t>(nthreads)); };
    http.Get("/", [this](const httplib::Request& req, httplib::Response& res) { status.page(req, res); });
    http.Get("/healthz", route("/healthz", false, status, &StatusEndpoints::healthz));
    http.Get("/metrics", route("/metrics", false, status, &StatusEndpoints::metrics));
    http.Post("/v1/embed/text", route("/v1/embed/text", true, embed, &EmbedEndpoints::embed_text));
    http.Post("/v1/embed/image", route("/v1/embed/image", true, embed, &EmbedEndpoints::embed_image));
    http.Post("/v1/compare", route("/v1/compare", true, embed, &EmbedEndpoints::compare));
    http.Post("/v1/search", route("/v1/search", true, search, &SearchEndpoints::search));
    http.Get(R"(/v1/images/(.*))", route("/v1/images", true, search, &SearchEndpoints::image));
    http.Post("/v1/classify", route("/v1/classify", true, apps, &AppEndpoints::classify));
    http.Post("/v1/retrieve", route("/v1/retrieve", true, apps, &AppEndpoints::retrieve));
    http.Post("/v1/dedup", route("/v1/dedup", true, apps, &AppEndpoints::dedup));
    http.Post("/v1/video", route("/v1/video", true, apps, &AppEndpoints::video));
    // httplib's own errors (404 no route, 413 too large, 400 bad request line): JSON bodies too
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) { return mw.library_error(req, res); }));
  }
};

Server::Server(const ServerOptions& o) : impl_(std::make_unique<Impl>(o)) {}
Server::~Server() { stop(); }

int Server::bind() {
  if (impl_->o.port == 0) {
    impl_->bound_port = impl_->http.bind_to_any_port(impl_->o.host);
  } else {
    impl_->bound_port = impl_->http.bind_to_port(impl_->o.host, impl_->o.port) ? impl_->o.port : -1;
  }
  if (impl_->bound_port < 0) fail("cannot listen on {}:{} (address in use or not available)", impl_->o.host, impl_->o.port);
  return impl_->bound_port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() {
  if (impl_) impl_->http.stop();
}
int Server::port() const { return impl_->bound_port; }

}  // namespace clipkit::server
