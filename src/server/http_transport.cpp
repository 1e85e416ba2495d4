#include "server/http_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/json.h"
#include "server/json_http.h"

namespace clipkit::server {

namespace {

using Clock = std::chrono::steady_clock;
thread_local ConnectionState* t_state = nullptr;

// The address and port of one end of a socket (local: this end); false when unknown.
bool socket_address(int sock, bool local, std::string* ip, int* port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if ((local ? ::getsockname(sock, reinterpret_cast<sockaddr*>(&a), &len)
             : ::getpeername(sock, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
    return false;
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    *port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    *port = ntohs(v6->sin6_port);
  }
  *ip = buf;
  return true;
}

// Closing a socket with unread input makes the kernel send a reset, which can destroy the answer
// (a 401 or 413 sent before the body was read) before the client reads it: stop sending, then
// read and drop what still arrives for a short while first (nginx's "lingering close").
void linger(int sock) {
  ::shutdown(sock, SHUT_WR);
  char buf[16384];
  size_t dropped = 0;
  const auto until = Clock::now() + std::chrono::seconds(2);
  while (dropped < (8u << 20) && Clock::now() < until) {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    if (n <= 0) break;
    dropped += static_cast<size_t>(n);
  }
}

}  // namespace

// One connection's byte stream: a socket (with deadlines) or a memory buffer (serve_bytes). It
// buffers reads (httplib reads request lines a byte at a time) and keeps pipelined bytes across
// the requests of a connection.
class HttpTransport::Stream final : public httplib::Stream {
 public:
  // Socket mode.
  Stream(int sock, const TransportLimits& l, const std::atomic<socket_t>& listening)
      : sock_(sock), l_(l), listening_(&listening) {}
  // Memory mode.
  Stream(std::string_view in, const TransportLimits& l) : sock_(-1), l_(l), in_(in) {}

  ConnectionState state;
  std::string out;  // memory mode: what the server wrote

  // A new request starts: its header deadline runs from now.
  void begin_request() {
    state.stop = ConnectionState::Stop::None;
    state.close_after_response = false;
    state.hold_next_s = 0;
    in_body_ = false;
    body_raw_ = 0;
    request_bytes_ = 0;
    deadline_ = Clock::now() + std::chrono::seconds(l_.header_timeout_s);
  }
  // The headers are read: the body's deadline runs from now.
  void headers_done() {
    in_body_ = true;
    deadline_ = Clock::now() + std::chrono::seconds(l_.body_timeout_s);
  }
  bool has_buffered() const { return pos_ < len_ || (sock_ < 0 && in_pos_ < in_.size()); }
  size_t request_bytes() const { return request_bytes_; }

  // Waits until a next request starts arriving (keep-alive), the idle timeout passes or the server stops.
  bool wait_next_request() const {
    if (has_buffered()) return true;
    if (sock_ < 0) return false;
    return wait(POLLIN, Clock::now() + std::chrono::seconds(l_.idle_timeout_s)) == Wait::Ready;
  }

  // Lets the connection's next request wait, unread, until `until` (ends early when the server
  // stops or the peer hangs up).
  void hold(Clock::time_point until) const {
    if (sock_ >= 0) wait(0, until);
  }

  bool is_readable() const override { return has_buffered() || (sock_ >= 0 && wait(POLLIN, deadline_) == Wait::Ready); }
  bool is_writable() const override {
    return sock_ < 0 || wait(POLLOUT, Clock::now() + std::chrono::seconds(l_.write_timeout_s)) == Wait::Ready;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= len_) {
      const ssize_t got = fill();
      if (got <= 0) return got;
    }
    const size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    request_bytes_ += n;
    if (in_body_) {
      body_raw_ += n;
      if (body_raw_ > 2 * l_.max_body_bytes + (1u << 20)) {
        state.stop = ConnectionState::Stop::BodyTooLarge;
        return -1;
      }
    }
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (sock_ < 0) {
      out.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    size_t done = 0;
    const auto until = Clock::now() + std::chrono::seconds(l_.write_timeout_s);
    while (done < size) {
      if (wait(POLLOUT, until) != Wait::Ready) return done ? static_cast<ssize_t>(done) : -1;
      const ssize_t n = ::send(sock_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return done ? static_cast<ssize_t>(done) : -1;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  socket_t socket() const override { return sock_ < 0 ? 0 : sock_; }

 private:
  // Refills the buffer: the bytes read, 0 at the end of the input, -1 on an error, a stop, or when
  // the deadline passed.
  ssize_t fill() {
    pos_ = len_ = 0;
    if (state.stop != ConnectionState::Stop::None) return -1;
    if (sock_ < 0) {
      len_ = std::min(sizeof buf_, in_.size() - in_pos_);
      std::memcpy(buf_, in_.data() + in_pos_, len_);
      in_pos_ += len_;
      return static_cast<ssize_t>(len_);
    }
    while (true) {
      const Wait w = wait(POLLIN, deadline_);
      if (w == Wait::Timeout)
        state.stop = in_body_ ? ConnectionState::Stop::BodyTimeout : ConnectionState::Stop::HeaderTimeout;
      if (w != Wait::Ready) return -1;
      const ssize_t n = ::recv(sock_, buf_, sizeof buf_, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return -1;
      len_ = static_cast<size_t>(n);
      return n;
    }
  }

  enum class Wait { Ready, Timeout, Failed };  // Failed: a socket error, or the server is stopping

  // Polls in short slices so that a stopping server is noticed.
  Wait wait(short events, Clock::time_point until) const {
    while (true) {
      if (listening_ && *listening_ == INVALID_SOCKET) return Wait::Failed;
      const auto now = Clock::now();
      if (now >= until) return Wait::Timeout;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;
      pollfd p{sock_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 200)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Wait::Failed;
      if (r > 0) return Wait::Ready;
    }
  }

  void address(bool local, std::string& ip, int& port) const {
    port = 0;
    if (sock_ < 0 || !socket_address(sock_, local, &ip, &port)) ip = "local";
  }

  int sock_;
  const TransportLimits& l_;
  const std::atomic<socket_t>* listening_ = nullptr;
  std::string_view in_;
  size_t in_pos_ = 0;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0;
  bool in_body_ = false;
  size_t body_raw_ = 0, request_bytes_ = 0;
  Clock::time_point deadline_ = Clock::now();
};

// A whole JSON error response written straight to the stream (no request to answer through httplib).
void HttpTransport::write_error(Stream& strm, int status, const std::string& message) {
  const std::string body = json_text(error_body(status, message));
  const std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\n{}Connection: close\r\nContent-Length: {}\r\n\r\n", status,
      status == 503 ? "Service Unavailable" : "Request Timeout", status == 503 ? "Retry-After: 1\r\n" : "", body.size());
  strm.write(head.data(), head.size());
  strm.write(body.data(), body.size());
}

HttpTransport::HttpTransport(const TransportLimits& l, std::function<void(int)> on_reject)
    : l_(l), on_reject_(std::move(on_reject)) {
  // a few threads beyond the admitted connections, so refusals never wait for a thread
  const size_t threads = static_cast<size_t>(std::max(1, l_.max_connections)) + 4;
  new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  set_payload_max_length(l_.max_body_bytes);
}

int HttpTransport::bind_listening(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound >= 0) ::listen(svr_sock_, SOMAXCONN);  // a listening socket takes a new backlog
  return bound;
}

ConnectionState* HttpTransport::current() { return t_state; }

int HttpTransport::active_connections() const {
  std::lock_guard<std::mutex> l(mu_);
  return active_;
}

void HttpTransport::serve(Stream& strm) {
  t_state = &strm.state;
  try {
    int left = std::max(1, l_.keep_alive_max);
    while (left-- > 0 && strm.wait_next_request()) {
      strm.begin_request();
      bool closed = false;
      const bool ok = process_request(strm, /*close_connection=*/left == 0, closed,
                                      [&strm](httplib::Request&) { strm.headers_done(); });
      // httplib answers nothing when even the request line did not arrive: say why
      if (!ok && strm.state.stop == ConnectionState::Stop::HeaderTimeout && strm.request_bytes() > 0)
        write_error(strm, 408, fmt::format("the request line and headers did not arrive within {} s", l_.header_timeout_s));
      if (!ok || closed || strm.state.close_after_response || strm.state.stop != ConnectionState::Stop::None) break;
      if (strm.state.hold_next_s > 0) strm.hold(Clock::now() + std::chrono::seconds(strm.state.hold_next_s));
    }
  } catch (...) {
    t_state = nullptr;
    throw;
  }
  t_state = nullptr;
}

std::string HttpTransport::serve_bytes(std::string_view raw) {
  Stream strm(raw, l_);
  strm.state.peer = "local";
  serve(strm);
  return std::move(strm.out);
}

bool HttpTransport::process_and_close_socket(socket_t sock) {
  // Answers go out as httplib writes them (the header block, then the body): with Nagle's algorithm
  // the body would wait for the client's ACK of the headers, which a client on a kept-alive
  // connection delays by up to 40 ms -- every answer after a connection's first would take 40 ms.
  const int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string peer = "?";
  int port = 0;
  socket_address(sock, /*local=*/false, &peer, &port);
  bool admitted = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (active_ < l_.max_connections && per_client_[peer] < l_.max_connections_per_client) {
      ++active_;
      ++per_client_[peer];
      admitted = true;
    }
  }
  if (!admitted) {
    Stream strm(sock, l_, svr_sock_);
    write_error(strm, 503, "too many connections; retry shortly");
    if (on_reject_) on_reject_(503);
  } else {
    Stream strm(sock, l_, svr_sock_);
    strm.state.peer = peer;
    try {
      serve(strm);
    } catch (...) {  // nothing may escape into the pool thread: that would end the process
    }
    // an answer sent before the whole request was read: keep it from being lost to a reset
    if (strm.state.close_after_response || strm.state.stop != ConnectionState::Stop::None) linger(sock);
    std::lock_guard<std::mutex> l(mu_);
    --active_;
    if (--per_client_[peer] == 0) per_client_.erase(peer);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

}  // namespace clipkit::server
