// clipkit serve: the JSON API and the web page over one index (cpp-httplib).
//
// Endpoints (docs/api.md): GET / (page), GET /healthz, GET /metrics (Prometheus), POST /v1/embed/text,
// POST /v1/embed/image, POST /v1/embeddings (OpenAI's), POST /v1/search, POST /v1/compare, GET /v1/images/{id}, and the applications
// POST /v1/classify, /v1/retrieve, /v1/dedup, /v1/video.
// The parts, one file each: http_transport.h (connections: limits, deadlines), middleware.h (the
// route table; what is checked before a body is read; bodies read within limits; errors as JSON;
// metrics around every handler), metrics.h, library_handle.h (the served index, switched to a new
// generation when one is written), embed_queue.h (the batching queue: request threads decode and
// preprocess images themselves, a bounded number at a time; every model call goes through one
// queue, so concurrent requests share model batches and the model runs on one thread with the
// OpenMP pool under it), json_http.h (JSON bodies, multipart forms, uploads, JSON responses),
// query_input.h, and the endpoint families status_endpoints.h, embed_endpoints.h,
// search_endpoints.h, app_endpoints.h, openai_endpoints.h. docs/security.md says what is enforced where.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "index/library.h"
#include "pipeline/embedder.h"

namespace clipkit::server {

struct ServerOptions {
  std::string index_dir;
  std::string model_dir;  // "" = the index's model
  std::string precision = "fp32";
  std::string device = "cpu";
  std::string host = "127.0.0.1";
  int port = 8080;          // 0 = any free port (see Server::port())
  std::string api_key;      // non-empty: /v1/* needs "Authorization: Bearer <key>"
  size_t max_body_bytes = 16u << 20;  // request bodies above this get 413 (decoded size, any encoding)
  int max_texts = 256;      // per /v1/embed/text request
  int max_prompts = 256;    // per /v1/compare request
  int64_t max_k = 1000;
  int max_batch = 64;       // rows per model batch
  int max_queue = 256;      // inputs waiting for the model; a request over it gets 503 + Retry-After
  int text_cache = 4096;    // recent text embeddings kept (0 = no cache)
  int model_threads = 0;    // OpenMP threads for the model (0 = all cores)
  // connections
  int max_connections = 64;             // served at once, each on its own thread; more get 503
  int max_connections_per_client = 16;  // per peer address
  int header_timeout_s = 10;            // request line + headers must arrive within this
  int body_timeout_s = 60;              // and the body within this after them
  int idle_timeout_s = 5;               // an idle keep-alive connection is closed after this
  // uploads
  int64_t max_image_pixels = 40'000'000;  // per decoded upload (and per video frame); the CLI allows 178,956,970
  int max_decodes = 2;                    // uploads decoded at once; others wait
  int max_form_fields = 64;               // multipart parts per request
  double reload_interval_s = 1;           // how often index.json is checked for a new generation (0 = never)
};

class Server {
 public:
  explicit Server(const ServerOptions& o);  // loads the index and its model; throws Error
  ~Server();
  // Binds host:port; returns the port (useful with port 0). Throws Error when it cannot bind.
  int bind();
  void run();   // serves until stop()
  void stop();
  int port() const;
  // Answers the requests in `raw` as one connection would and returns the bytes written back: the
  // whole request path (routing, limits, parsing, handlers) without sockets, for tests and fuzzing.
  std::string serve_bytes(std::string_view raw);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipkit::server
