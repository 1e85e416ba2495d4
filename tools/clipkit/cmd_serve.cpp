// clipkit serve --index DIR [--host 127.0.0.1] [--port 8080] [--api-key KEY] [limits...]
// The JSON API (docs/api.md) and the search page at http://HOST:PORT/. Ctrl-C stops it. The limits
// and what they protect: docs/security.md.
#include <csignal>
#include <cstdio>

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
  app.add_option("--host", o->host, "address to listen on (default 127.0.0.1)");
  app.add_option("--port", o->port, "port (default 8080; 0 = any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--api-key", o->api_key, "require \"Authorization: Bearer KEY\" on /v1/ endpoints");
  app.add_option("--model", o->model_dir, "the index's model (default: the folder recorded in the index)");
  app.add_option("--max-body-mb", *mb, "largest request body accepted, MiB (default 16)")->check(CLI::PositiveNumber);
  app.add_option("--max-batch", o->max_batch,
                 "most inputs per model batch; requests that arrive while one runs share the next (default 64)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queue", o->max_queue,
                 "most inputs waiting for the model; a request over it gets 503 with Retry-After at once (default 256)")
      ->check(CLI::PositiveNumber);
  app.add_option("--text-cache", o->text_cache, "recent text embeddings kept in memory (default 4096; 0 = none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-connections", o->max_connections,
                 "connections served at once, one thread each; more get 503 (default 64)")
      ->check(CLI::PositiveNumber);
  app.add_option("--http-threads", o->max_connections, "")->check(CLI::PositiveNumber)->group("");  // old name
  app.add_option("--max-connections-per-client", o->max_connections_per_client,
                 "connections one address may hold (default 16)")
      ->check(CLI::PositiveNumber);
  app.add_option("--header-timeout", o->header_timeout_s, "seconds for the request line and headers (default 10)")
      ->check(CLI::PositiveNumber);
  app.add_option("--body-timeout", o->body_timeout_s, "seconds for a request body (default 60)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-image-pixels", o->max_image_pixels,
                 "largest uploaded image (and video frame), width x height (default 40000000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-decodes", o->max_decodes, "uploaded images decoded at once (default 2)")
      ->check(CLI::PositiveNumber);
  app.add_option("--reload-interval", o->reload_interval_s,
                 "seconds between checks for a new index generation (default 1; 0 = never)")
      ->check(CLI::NonNegativeNumber);
  add_compute_options(app, *c);
  return [o, c, mb]() {
    o->precision = c->precision;
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
