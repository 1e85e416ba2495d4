// The whole HTTP request path of `clipkit serve` (request line, headers, routing, the checks before
// the body, chunked/gzip bodies, JSON and multipart parsing, every handler) without sockets:
// Server::serve_bytes on a tiny model and index built once at start-up.
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "core/parallel.h"
#include "fuzz_util.h"
#include "index/library.h"
#include "index/query.h"
#include "pipeline/bulk_embed.h"
#include "server/server.h"

namespace {
std::unique_ptr<clipkit::server::Server> g_server;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace clipkit;
  set_num_threads(1);
  const std::string data = CLIPKIT_TEST_DATA, dir = fuzz::scratch_dir() + "/http";
  std::filesystem::remove_all(dir);
  auto e = pipeline::Embedder::load(data + "/models/tiny-clip");
  auto items = pipeline::list_coco(data + "/datasets/coco-tiny", "val");
  items.resize(8);
  pipeline::bulk_embed(*e, items, dir + "/emb", {});
  Tensor x;
  std::vector<index::ImageRecord> recs;
  pipeline::ModelIdentity id;
  index::load_embeddings(dir + "/emb", &x, &recs, &id);
  index::Library::build(dir + "/idx", id, x, recs, {});
  server::ServerOptions o;
  o.index_dir = dir + "/idx";
  o.api_key = "k";
  o.max_body_bytes = 1 << 16;
  o.max_image_pixels = 1 << 20;
  o.model_threads = 1;
  o.reload_interval_s = 0;
  g_server = std::make_unique<server::Server>(o);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_server->serve_bytes(clipkit::fuzz::as_view(data, size));
  return 0;
}
