// What the endpoint families share: the options, the served library, the model queue.
#pragma once
#include "index/library.h"
#include "server/embed_queue.h"
#include "server/server.h"

namespace clipkit::server {

struct Service {
  const ServerOptions& o;
  const index::Library& lib;
  EmbedQueue& queue;
};

}  // namespace clipkit::server
