// clipkit serve --index DIR [--host 127.0.0.1] [--port 8080] [--api-key KEY] [limits...]
// The JSON API (docs/api.md) and the search page at http://HOST:PORT/. Ctrl-C stops it. The limits
// and what they protect: docs/security.md.
#include <csignal>
#include <cstdio>
#include <limits>

#include "command.h"
#include "server/server.h"

namespace clipkit::cli {
namespace {

server::Server* g_server = nullptr;
void on_signal(int) {
  if (g_server) g_server->stop();
}

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<server::ServerOptions>();
  auto c = std::make_shared<ComputeOptions>();
  auto mb = std::make_shared<double>(16);
  app.add_option("--index", o->index_dir, "index folder")->required();
  app.add_option("--host", o->host, "address to listen on")->capture_default_str();
  add_int_flag(app, "--port", o->port, "port (0 = any free port)", 0, 65535);
  app.add_option("--api-key", o->api_key, "require \"Authorization: Bearer KEY\" on /v1/ endpoints");
  add_model_flag(app, o->model_dir, ModelUse::Optional);
  add_number_flag(app, "--max-body-mb", *mb, "largest request body accepted, MiB", 0, 1 << 20, true);
  add_int_flag(app, "--max-batch", o->max_batch,
               "most inputs per model batch; requests that arrive while one runs share the next", 1);
  add_int_flag(app, "--max-queue", o->max_queue,
               "most inputs waiting for the model; a request over it gets 503 with Retry-After at once", 1);
  add_int_flag(app, "--text-cache", o->text_cache, "recent text embeddings kept in memory (0 = none)", 0);
  add_int_flag(app, "--max-connections", o->max_connections, "connections served at once, one thread each; more get 503", 1);
  app.add_option("--http-threads", o->max_connections, "")->check(CLI::PositiveNumber)->group("");  // old name
  add_int_flag(app, "--max-connections-per-client", o->max_connections_per_client, "connections one address may hold", 1);
  add_int_flag(app, "--header-timeout", o->header_timeout_s, "seconds for the request line and headers", 1);
  add_int_flag(app, "--body-timeout", o->body_timeout_s, "seconds for a request body", 1);
  add_int_flag(app, "--max-image-pixels", o->max_image_pixels,
               "largest uploaded image (and video frame), width x height", int64_t{1});
  add_int_flag(app, "--max-decodes", o->max_decodes, "uploaded images decoded at once", 1);
  add_number_flag(app, "--reload-interval", o->reload_interval_s,
                  "seconds between checks for a new index generation (0 = never)", 0,
                  std::numeric_limits<double>::infinity());
  add_threads_flag(app, c->threads);
  add_precision_flag(app, c->precision);
  add_device_option(app, c->device);
  return [o, c, mb]() {
    o->precision = c->precision;
    o->device = backend::resolve_device(c->device);
    note_precision(o->device, o->precision);
    o->model_threads = c->threads;
    o->max_body_bytes = static_cast<size_t>(*mb * 1024 * 1024);
    server::Server s(*o);
    int port = s.bind();
    g_server = &s;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::fprintf(stderr, "clipkit: serving %s on http://%s:%d/\n", o->index_dir.c_str(), o->host.c_str(), port);
    std::printf("listening on http://%s:%d/\n", o->host.c_str(), port);
    std::fflush(stdout);
    s.run();
    g_server = nullptr;
    std::fprintf(stderr, "clipkit: stopped\n");
    return kOk;
  };
}

CommandRegistrar reg("serve", "Serve search over HTTP: JSON API and a web page", setup);

}  // namespace
}  // namespace clipkit::cli
