// What the endpoint families share: the options, the served library, the model queue.
#pragma once
#include "server/embed_queue.h"
#include "server/library_handle.h"
#include "server/server.h"

namespace clipkit::server {

struct Service {
  const ServerOptions& o;
  LibraryHandle& libs;  // take one snapshot per request: libs.current()
  EmbedQueue& queue;
};

}  // namespace clipkit::server
