// The middleware and transport in-process (Server::serve_bytes's path, no sockets): every exception
// a handler throws becomes a JSON error (issue 14: an exception while answering an unknown path
// aborted the process), checks before the body, metrics with the status actually sent; and the
// transport's listening socket.
#include "server/middleware.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "server/api_error.h"
#include "server/http_transport.h"
#include "server/json_http.h"
#include "server/metrics.h"
#include "server/serve_process.h"

namespace clipkit::server {
namespace {

struct Answer {
  int status = -1;
  std::string body, head;
};

Answer parse(const std::string& raw) {
  Answer a;
  if (raw.rfind("HTTP/1.1 ", 0) == 0) a.status = std::atoi(raw.c_str() + 9);
  const size_t at = raw.find("\r\n\r\n");
  a.head = raw.substr(0, at);
  if (at != std::string::npos) a.body = raw.substr(at + 4);
  return a;
}

class MiddlewareTest : public ::testing::Test {
 protected:
  MiddlewareTest() : mw_(o_, metrics_), http_(limits(), nullptr) {
    auto thrower = [](auto make) {
      return [make](const httplib::Request&, httplib::Response&) { make(); };
    };
    mw_.route(http_, "GET", "/runtime", false, "/runtime", false,
              thrower([] { throw std::runtime_error("secret internal detail"); }));
    mw_.route(http_, "GET", "/oom", false, "/oom", false, thrower([] { throw std::bad_alloc(); }));
    mw_.route(http_, "GET", "/int", false, "/int", false, thrower([] { throw 42; }));
    mw_.route(http_, "GET", "/api", false, "/api", false, thrower([] { throw ApiError(418, "a teapot"); }));
    mw_.route(http_, "GET", "/busy", false, "/busy", false,
              thrower([] { throw ApiError(503, "busy", "", /*retry_after=*/1); }));
    mw_.route(http_, "GET", "/bad", false, "/bad", false, thrower([] { fail("{}: bad input", "x.json"); }));
    mw_.route(http_, "GET", "/plain", false, "/plain", false,
              [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    mw_.route(http_, "POST", "/v1/echo", false, "/v1/echo", true,
              [](const httplib::Request& req, httplib::Response& res) { send_json(res, 200, parse_body(req)); });
    mw_.route(http_, "GET", "/v1/things/", true, "/v1/things", true,
              [](const httplib::Request& req, httplib::Response& res) { send_json(res, 200, {{"id", req.matches[1]}}); });
    mw_.install(http_);
  }
  static TransportLimits limits() {
    TransportLimits t;
    t.max_body_bytes = 64;
    return t;
  }
  static ServerOptions options() {
    ServerOptions o;
    o.api_key = "k";
    o.max_body_bytes = 64;
    return o;
  }
  Answer get(const std::string& path, bool key = true) {
    return parse(http_.serve_bytes("GET " + path + " HTTP/1.1\r\nHost: x\r\n" +
                                   (key ? "Authorization: Bearer k\r\n" : "") + "\r\n"));
  }
  Answer post(const std::string& path, const std::string& body, const std::string& headers = "") {
    return parse(http_.serve_bytes("POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n" + headers +
                                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
  }
  static void expect_error(const Answer& a, int status, const std::string& says) {
    EXPECT_EQ(a.status, status) << a.head << "\n" << a.body;
    nlohmann::json j;
    ASSERT_TRUE(try_parse_json(a.body, &j)) << a.body;
    EXPECT_EQ(j["error"]["status"], status);
    EXPECT_NE(j["error"]["message"].get<std::string>().find(says), std::string::npos) << a.body;
  }

  ServerOptions o_ = options();
  Metrics metrics_;
  Middleware mw_;
  HttpTransport http_;
};

TEST_F(MiddlewareTest, EveryExceptionBecomesAJsonError) {
  auto r = get("/runtime");
  expect_error(r, 500, "internal error");
  EXPECT_EQ(r.body.find("secret internal detail"), std::string::npos);  // details go to the log only
  expect_error(get("/oom"), 503, "out of memory");
  expect_error(get("/int"), 500, "internal error");
  expect_error(get("/api"), 418, "a teapot");
  expect_error(get("/bad"), 400, "x.json: bad input");
  EXPECT_EQ(get("/plain").status, 200);
}

TEST_F(MiddlewareTest, UnknownPathsAnswerWithTheirBytesEscaped) {
  auto r = get("/%ff%fe/x", false);
  expect_error(r, 404, "no such endpoint: GET /\xff\xfe/x");  // the bytes, read back from their escapes
  EXPECT_NE(r.body.find("GET /\\udcff\\udcfe/x"), std::string::npos) << r.body;
  expect_error(parse(http_.serve_bytes("PUT /plain HTTP/1.1\r\nHost: x\r\n\r\n")), 405, "method not allowed");
  expect_error(parse(http_.serve_bytes("GET /plain HTTP/7\r\n\r\n")), 400, "malformed");
  expect_error(parse(http_.serve_bytes(std::string("\x16\x03\x01\0\x05 not HTTP\r\n\r\n", 18))), 400, "malformed");
}

TEST_F(MiddlewareTest, ChecksBeforeTheBodyAndLimitsWhileReading) {
  // no key: 401 whatever the body, and the connection is closed (its body was not read)
  auto r = parse(http_.serve_bytes("POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{"));
  expect_error(r, 401, "API key");
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << r.head;
  expect_error(post("/v1/echo", std::string(65, ' ')), 413, "too large (limit 64 bytes)");
  expect_error(post("/v1/echo", "a=b", "Content-Type: application/x-www-form-urlencoded\r\n"), 415, "form-encoded");
  // chunked: counted after decoding, whatever the chunk sizes
  const std::string chunk = "10\r\n" + std::string(16, ' ') + "\r\n";
  expect_error(parse(http_.serve_bytes("POST /v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk + chunk + chunk + chunk + "0\r\n\r\n")),
               413, "too large");
  auto ok = post("/v1/echo", R"({"a": [1, 2]})", "Content-Type: application/json\r\n");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, R"({"a":[1,2]})");
  expect_error(post("/v1/echo", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), 400, "not valid JSON");
  expect_error(get("/v1/things/12x"), 400, "numeric id only");
  auto id = get("/v1/things/0123");
  EXPECT_EQ(id.status, 200);
  EXPECT_EQ(id.body, R"({"id":"0123"})");
}

TEST_F(MiddlewareTest, MetricsCountTheStatusSent) {
  get("/plain");
  get("/runtime");
  get("/nope");
  const std::string m = metrics_.render(0, 1);
  EXPECT_NE(m.find("endpoint=\"/plain\",code=\"200\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("endpoint=\"/runtime\",code=\"500\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("endpoint=\"other\",code=\"404\"} 1"), std::string::npos) << m;
  EXPECT_EQ(m.find("code=\"-1\""), std::string::npos) << m;
}

// A 503 with Retry-After (the model queue full) holds the connection's next request unread for
// that long: a client that retries at once on the same connection (wrk does, thousands of times a
// second) waits as it was told to, instead of taking the cores from the requests being served.
// Other connections are answered at once meanwhile.
TEST_F(MiddlewareTest, ARetryAfterAnswerHoldsTheConnectionsNextRequest) {
  using Clock = std::chrono::steady_clock;
  const int port = http_.bind_listening("127.0.0.1", 0);
  ASSERT_GT(port, 0);
  std::thread server([this] { http_.listen_after_bind(); });
  {
    test::RawConnection c(port), other(port);
    ASSERT_TRUE(c.ok() && other.ok());
    ASSERT_TRUE(c.send("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n"));
    const Answer busy = parse(c.read_response(5));
    EXPECT_EQ(busy.status, 503);
    EXPECT_NE(busy.head.find("Retry-After: 1"), std::string::npos) << busy.head;
    const auto t0 = Clock::now();
    ASSERT_TRUE(c.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(other.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"));  // meanwhile, served at once
    EXPECT_EQ(parse(other.read_response(5)).status, 200);
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 0.8);
    const Answer held = parse(c.read_response(5));
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(held.status, 200);
    EXPECT_EQ(held.body, "ok");
    EXPECT_GE(waited, 0.95);
    EXPECT_LT(waited, 3.0);
  }
  http_.stop();
  server.join();
}

// The listening socket's accept queue takes a burst of new connections even while no thread
// accepts them (httplib's own backlog of 5 made the kernel drop the 7th handshake on: a client that
// had sent its request then saw a reset with no answer -- the soak's rare unanswered requests).
TEST(HttpTransportListen, AcceptQueueHoldsABurstOfConnections) {
  HttpTransport http(TransportLimits{}, nullptr);
  const int port = http.bind_listening("127.0.0.1", 0);
  ASSERT_GT(port, 0);
  std::vector<int> fds;
  int established = 0;
  for (int i = 0; i < 64; ++i) {  // nobody calls accept: each handshake must complete in the queue
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) continue;
    pollfd p{fd, POLLOUT, 0};
    int err = -1;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, 500) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++established;
  }
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(established, 64);
}

}  // namespace
}  // namespace clipkit::server
