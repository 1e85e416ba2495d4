// The HTTP engine: cpp-httplib 0.11 (Debian's libcpp-httplib) with the connection limits it cannot
// enforce by itself, in the one hook it leaves open for that (its per-connection loop,
// process_and_close_socket, is virtual; process_request is protected):
//   * every connection runs on its own pool thread, at most max_connections at once and
//     max_connections_per_client per peer address; the next one gets 503 at once;
//   * request line + headers must arrive within header_timeout_s, the body within body_timeout_s
//     (slow clients get 408 and are disconnected), an idle keep-alive connection is closed after
//     idle_timeout_s, and one connection serves at most keep_alive_max requests;
//   * after an answer with Retry-After (503: the model queue is full) the connection's next
//     request is read only once that time has passed;
//   * the raw bytes of one body are capped (2 x max_body + 1 MiB, whatever the transfer
//     encoding); the exact decoded limit is the routes' (server/request_guard.h).
// The connection state the calling thread serves is visible to the handlers (current()), so a
// handler can close the connection after an answer sent before the body was read, and the error
// handler can tell a timeout from a malformed request.
#pragma once
#include <httplib.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace clipkit::server {

struct TransportLimits {
  int max_connections = 64;
  int max_connections_per_client = 16;
  int header_timeout_s = 10;
  int body_timeout_s = 60;
  int idle_timeout_s = 5;
  int write_timeout_s = 30;
  int keep_alive_max = 100;
  size_t max_body_bytes = 16u << 20;
};

// What happened to the request being read on this connection.
struct ConnectionState {
  enum class Stop { None, HeaderTimeout, BodyTimeout, BodyTooLarge };
  Stop stop = Stop::None;
  bool close_after_response = false;
  // The answer said Retry-After (the model queue was full): the connection's next request is read
  // no sooner, so a client that retries at once on the same connection waits as it was told to
  // instead of looping on 503s that take the cores from the requests being served.
  int hold_next_s = 0;
  std::string peer;
};

class HttpTransport : public httplib::Server {
 public:
  // on_reject(status): a connection refused before any request was read (503), for the metrics.
  HttpTransport(const TransportLimits& l, std::function<void(int)> on_reject);

  // Binds host:port (port 0: any free port) and returns the port, or -1. Its listening socket's
  // accept queue holds SOMAXCONN connections, not httplib's 5: under a burst of new connections
  // (clients reconnecting after refused or malformed requests, on a busy machine where the accept
  // thread waits for a core) a full queue makes the kernel drop the handshake, and a client that
  // has already sent its request then sees the connection reset with no answer.
  int bind_listening(const std::string& host, int port);

  // The state of the connection this thread serves, or nullptr outside a connection.
  static ConnectionState* current();

  // Serves the requests in `raw` as one connection from peer "local" and returns the bytes the
  // server wrote (tests and fuzzing: the whole request path without sockets).
  std::string serve_bytes(std::string_view raw);

  int active_connections() const;

 private:
  bool process_and_close_socket(socket_t sock) override;
  class Stream;
  void serve(Stream& strm);
  static void write_error(Stream& strm, int status, const std::string& message);

  TransportLimits l_;
  std::function<void(int)> on_reject_;
  mutable std::mutex mu_;
  int active_ = 0;
  std::map<std::string, int> per_client_;
};

}  // namespace clipkit::server
