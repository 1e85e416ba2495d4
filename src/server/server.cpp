// The service's assembly: the parts (server/*.h) built over one library and model, and the route
// table binding each endpoint to its handler behind the middleware.
#include "server/server.h"

#include <httplib.h>

#include "backend/backend.h"
#include "core/error.h"
#include "index/query.h"
#include "server/app_endpoints.h"
#include "server/embed_endpoints.h"
#include "server/embed_queue.h"
#include "server/http_transport.h"
#include "server/library_handle.h"
#include "server/metrics.h"
#include "server/middleware.h"
#include "server/openai_endpoints.h"
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
  al.max_video_pixels = o.max_image_pixels;
  return al;
}

TransportLimits transport_limits(const ServerOptions& o) {
  TransportLimits t;
  t.max_connections = std::max(1, o.max_connections);
  t.max_connections_per_client = std::max(1, o.max_connections_per_client);
  t.header_timeout_s = std::max(1, o.header_timeout_s);
  t.body_timeout_s = std::max(1, o.body_timeout_s);
  t.idle_timeout_s = std::max(1, o.idle_timeout_s);
  t.max_body_bytes = o.max_body_bytes;
  return t;
}

EmbedQueue::Limits queue_limits(const ServerOptions& o) {
  return {o.max_batch, o.model_threads, o.max_image_pixels, o.max_decodes, o.max_queue, o.text_cache};
}

}  // namespace

struct Server::Impl {
  ServerOptions o;
  std::unique_ptr<pipeline::Embedder> emb;
  Metrics metrics;
  LibraryHandle libs;
  EmbedQueue queue;
  Service service;
  Middleware mw;
  StatusEndpoints status;
  EmbedEndpoints embed;
  SearchEndpoints search;
  AppEndpoints apps;
  OpenAiEndpoints openai;
  HttpTransport http;
  int bound_port = -1;

  // A server lives for days: its weights are its own copy, so a checkpoint rewritten in place under
  // it cannot change or take away what it runs on (LoadOptions::map_weights).
  static model::LoadOptions server_load_options(const ServerOptions& o) {
    model::LoadOptions lo{backend::precision_from_name(o.precision), o.device};
    lo.map_weights = false;
    return lo;
  }

  Impl(const ServerOptions& opts, std::shared_ptr<const index::Library> lib)
      : o(opts),
        emb(index::load_query_model(*lib, o.model_dir, server_load_options(o))),
        libs(std::move(lib), o.reload_interval_s),
        queue(*emb, queue_limits(o), metrics),
        service{o, libs, queue},
        mw(o, metrics),
        status(service, metrics),
        embed(service),
        search(service),
        apps(service, app_limits(o, *emb)),
        openai(service),
        http(transport_limits(o), [this](int status) { metrics.other(status); }) {
    routes();
  }

  template <typename Part>
  void route(const std::string& method, const std::string& path, const std::string& endpoint, bool v1,
             const Part& part, void (Part::*fn)(const httplib::Request&, httplib::Response&) const,
             bool numeric_id = false) {
    mw.route(http, method, path, numeric_id, endpoint, v1,
             [&part, fn](const httplib::Request& req, httplib::Response& res) { (part.*fn)(req, res); });
  }

  void routes() {
    route("GET", "/", "/", false, status, &StatusEndpoints::page);
    route("GET", "/healthz", "/healthz", false, status, &StatusEndpoints::healthz);
    route("GET", "/metrics", "/metrics", false, status, &StatusEndpoints::metrics);
    route("POST", "/v1/embed/text", "/v1/embed/text", true, embed, &EmbedEndpoints::embed_text);
    route("POST", "/v1/embed/image", "/v1/embed/image", true, embed, &EmbedEndpoints::embed_image);
    route("POST", "/v1/embeddings", "/v1/embeddings", true, openai, &OpenAiEndpoints::embeddings);
    route("POST", "/v1/compare", "/v1/compare", true, embed, &EmbedEndpoints::compare);
    route("POST", "/v1/search", "/v1/search", true, search, &SearchEndpoints::search);
    route("GET", "/v1/images/", "/v1/images", true, search, &SearchEndpoints::image, /*numeric_id=*/true);
    route("POST", "/v1/classify", "/v1/classify", true, apps, &AppEndpoints::classify);
    route("POST", "/v1/retrieve", "/v1/retrieve", true, apps, &AppEndpoints::retrieve);
    route("POST", "/v1/dedup", "/v1/dedup", true, apps, &AppEndpoints::dedup);
    route("POST", "/v1/video", "/v1/video", true, apps, &AppEndpoints::video);
    mw.install(http);
  }
};

Server::Server(const ServerOptions& o)
    : impl_(std::make_unique<Impl>(o, std::shared_ptr<const index::Library>(index::Library::open(o.index_dir)))) {}
Server::~Server() { stop(); }

int Server::bind() {
  impl_->bound_port = impl_->http.bind_listening(impl_->o.host, impl_->o.port);
  if (impl_->bound_port < 0) fail("cannot listen on {}:{} (address in use or not available)", impl_->o.host, impl_->o.port);
  return impl_->bound_port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() {
  if (impl_) impl_->http.stop();
}
int Server::port() const { return impl_->bound_port; }
std::string Server::serve_bytes(std::string_view raw) { return impl_->http.serve_bytes(raw); }

}  // namespace clipkit::server
