// A real `clipkit serve` process on loopback for the adversarial and soak tests, a raw-socket
// client that can send what no well-behaved HTTP client sends (slow headers, lying lengths,
// endless chunked bodies, bytes that are not HTTP), and the test index they serve.
#pragma once
#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "index/library.h"
#include "index/query.h"
#include "pipeline/bulk_embed.h"
#include "test_util.h"

extern char** environ;

namespace clipkit::test {

class ServeProcess {
 public:
  // Starts `clipkit serve --port 0 ARGS...` and waits for its "listening on" line.
  explicit ServeProcess(const std::vector<std::string>& args) {
    std::vector<std::string> argv_s = {CLIPKIT_BINARY, "serve", "--port", "0"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string text;
    char buf[256];
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (pid_ > 0 && std::chrono::steady_clock::now() < until && text.find('\n') == std::string::npos) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 500) <= 0) continue;
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    const auto at = text.rfind(':');
    if (text.rfind("listening on http://", 0) == 0 && at != std::string::npos) port_ = std::atoi(text.c_str() + at + 1);
  }
  ~ServeProcess() { stop(); }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const {
    if (pid_ <= 0 || exited_) return false;
    int st;
    return ::waitpid(pid_, &st, WNOHANG) == 0;
  }
  // Resident memory now and at its peak, in MiB (/proc/PID/status).
  double rss_mib(bool peak = false) const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    const std::string key = peak ? "VmHWM:" : "VmRSS:";
    while (std::getline(f, line))
      if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + key.size()) / 1024.0;
    return -1;
  }
  // SIGTERM, then the exit status: 0 when it stopped cleanly; -signal when a signal killed it.
  int stop() {
    if (pid_ <= 0 || exited_) return status_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 300 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (::waitpid(pid_, &st, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      status_ = -SIGKILL;
    } else {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    }
    exited_ = true;
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

// One TCP connection to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      error_ = errno;
      ::close(fd_);
      fd_ = -1;
    }
  }
  int error() const { return error_; }  // connect's errno when !ok()
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  bool ok() const { return fd_ >= 0; }
  // false once the peer has closed or reset the connection
  bool send(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Everything the server sends until it closes the connection or `seconds` pass.
  std::string read_all(double seconds) {
    return receive(seconds, [](const std::string&) { return false; });
  }
  // One response: headers and a Content-Length body (what clipkit serve always sends).
  std::string read_response(double seconds) {
    return receive(seconds, [](const std::string& out) {
      const size_t head = out.find("\r\n\r\n");
      if (head == std::string::npos) return false;
      const size_t cl = out.find("Content-Length: ");
      const size_t len = cl != std::string::npos && cl < head ? std::strtoull(out.c_str() + cl + 16, nullptr, 10) : 0;
      return out.size() >= head + 4 + len;
    });
  }
  // Whether the server closes its end (end of file or a reset) within `seconds`.
  bool closed_by_peer(double seconds) {
    bool closed = false;
    receive(seconds, [](const std::string&) { return false; }, &closed);
    return closed;
  }

 private:
  // Reads until done(what was read) holds, the peer closes (*closed) or `seconds` pass.
  template <typename Done>
  std::string receive(double seconds, Done done, bool* closed = nullptr) {
    std::string out;
    char buf[65536];
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done(out) && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  int fd_ = -1;
  int error_ = 0;
};

// A request as bytes, with the test key "k3y" unless `key` is false; a POST gets Content-Type and
// Content-Length.
inline std::string http_request(const std::string& method, const std::string& path, const std::string& body = "",
                                const std::string& extra_headers = "", bool key = true,
                                const std::string& content_type = "application/json") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers;
  if (key) r += "Authorization: Bearer k3y\r\n";
  if (!body.empty() || method == "POST")
    r += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

// An index of coco-tiny's 40 val images by the tiny CLIP checkpoint at DIR/idx (shards in DIR/emb).
inline void build_test_index(const std::string& dir, int64_t shard_size = 10000) {
  auto e = pipeline::Embedder::load(data_path("models/tiny-clip"));
  pipeline::BulkEmbedOptions bo;
  bo.shard_size = shard_size;
  pipeline::bulk_embed(*e, pipeline::list_coco(data_path("datasets/coco-tiny"), "val"), dir + "/emb", bo);
  Tensor x;
  std::vector<index::ImageRecord> recs;
  pipeline::ModelIdentity id;
  index::load_embeddings(dir + "/emb", &x, &recs, &id);
  index::Library::build(dir + "/idx", id, x, recs, {});
}

// The status code of a raw response ("HTTP/1.1 404 Not Found..." -> 404), or -1.
inline int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::atoi(response.c_str() + 9);
}

inline std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

}  // namespace clipkit::test
