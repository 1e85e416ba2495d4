// The bounded soak (issue 14): 32 connections send a mix of good and bad requests to a real
// `clipkit serve` for CLIPKIT_SOAK_SECONDS (default 120) while a monitor checks /healthz every
// half second and samples the server's memory. Passes when: the server never crashed (it stops
// cleanly at the end), no good request got a 5xx or a broken connection, /healthz answered every
// time within 2 s, and resident memory after the warm-up quarter stayed within 160 MiB of its
// level at the end of the warm-up (flat: no growth with the number of requests).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cli/cli_util.h"
#include "core/base64.h"
#include "index/library.h"
#include "index/query.h"
#include "io/atomic_file.h"
#include "pipeline/bulk_embed.h"
#include "server/serve_process.h"
#include "test_util.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::RawConnection;
using test::status_of;

constexpr double kRssBoundMib = 160;

struct Req {
  std::string raw;
  bool good;  // a well-formed request that must succeed (status < 500)
};

std::vector<Req> request_mix(const std::string& image_b64) {
  const std::string deep = std::string(20000, '[') + std::string(20000, ']');
  const std::string b = "----soakboundary";
  const std::string form = "--" + b + "\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\ncat,\xff\r\n--" + b + "--\r\n";
  return {
      {test::http_request("GET", "/healthz", ""), true},
      {test::http_request("GET", "/metrics", ""), true},
      {test::http_request("POST", "/v1/search", json{{"text", "a red circle"}, {"k", 5}}.dump()), true},
      {test::http_request("POST", "/v1/search", json{{"image_id", 3}, {"k", 3}}.dump()), true},
      {test::http_request("POST", "/v1/embed/text", json{{"texts", {"a cat", "two dogs", "a blue square"}}}.dump()), true},
      {test::http_request("POST", "/v1/embed/image", json{{"image_base64", image_b64}}.dump()), true},
      {test::http_request("POST", "/v1/classify", json{{"image_id", 5}, {"labels", {"cat", "dog", "car"}}}.dump()), true},
      {test::http_request("POST", "/v1/compare", json{{"image_base64", image_b64}, {"prompts", {"a cat", "a dog"}}}.dump()), true},
      {test::http_request("GET", "/v1/images/7", ""), true},
      {test::http_request("POST", "/v1/search", "{not json"), false},
      {test::http_request("POST", "/v1/search", R"({"text": "a", "filter": )" + deep + "}"), false},
      {test::http_request("GET", "/%ff%fe", "", "", false), false},
      {test::http_request("POST", "/v1/search", json{{"text", "x"}}.dump(), "", false), false},
      {test::http_request("POST", "/v1/classify", form, "", true, "multipart/form-data; boundary=" + b), false},
      {test::http_request("POST", "/v1/embed/image", json{{"image_base64", "aGVsbG8gd29ybGQ="}}.dump()), false},
      {test::http_request("GET", "/v1/images/../../etc/passwd", ""), false},
      {"POST /v1/search HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer k3y\r\nContent-Length: 99999999\r\n\r\n", false},
      {"\x16\x03\x01 not http at all\r\n\r\n", false},
  };
}

TEST(ServerSoak, ThirtyTwoConnectionsOfMixedRequests) {
  const char* env = std::getenv("CLIPKIT_SOAK_SECONDS");
  const double seconds = env ? std::atof(env) : 120;
  const std::string dir = test::temp_dir("soak");
  test::build_test_index(dir);
  // Connection limits well above the 33 clients: a client that reconnects after a bad request may
  // find its closed connection still counted for a moment on a loaded machine (limits have their
  // own tests in http_transport_test / adversarial tests).
  test::ServeProcess serve({"--index", dir + "/idx", "--api-key", "k3y", "--max-body-mb", "1", "--max-connections",
                            "256", "--max-connections-per-client", "256", "--threads", "1"});
  ASSERT_GT(serve.port(), 0);
  const auto mix = request_mix(base64_encode(read_file(test::data_path("images/chelsea.jpg"))));

  std::atomic<bool> stop{false};
  std::atomic<int64_t> good{0}, good_failed{0}, bad{0}, bad_5xx{0}, health_fail{0}, health_checks{0};
  std::vector<std::string> failures;
  std::mutex fmu;
  auto note = [&](const std::string& s) {
    std::lock_guard<std::mutex> l(fmu);
    if (failures.size() < 10) failures.push_back(s);
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 32; ++t)
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::unique_ptr<RawConnection> c;
      while (!stop) {
        const Req& r = mix[rng() % mix.size()];
        const bool reused = c && r.good;
        if (!reused) c = std::make_unique<RawConnection>(serve.port());  // bad requests may close it
        // what became of a request that got no response (for the failure notes)
        auto attempt = [&](std::string* why) {
          if (!c->ok()) {
            *why = "connect failed: " + std::string(std::strerror(c->error()));
            return std::string();
          }
          if (!c->send(r.raw)) {
            *why = "send failed";
            return std::string();
          }
          const auto t0 = std::chrono::steady_clock::now();
          std::string got = c->read_response(90);
          if (got.empty()) {
            char b[64];
            std::snprintf(b, sizeof b, "no bytes in %.1f s",
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            *why = b;
          }
          return got;
        };
        std::string why;
        std::string resp = attempt(&why);
        if (resp.empty() && reused) {  // the server closed the idle keep-alive connection: a new one
          c = std::make_unique<RawConnection>(serve.port());
          resp = attempt(&why);
        }
        const int st = status_of(resp);
        if (r.good) {
          ++good;
          if (st < 200 || st >= 500) {
            ++good_failed;
            note(std::to_string(st) + " for " + r.raw.substr(0, 60) + " -> " +
                 (resp.empty() ? why + (reused ? " (after a kept-alive connection)" : "") : test::body_of(resp).substr(0, 200)));
            c.reset();
          }
        } else {
          ++bad;
          bad_5xx += st >= 500 && st != 503;
          c.reset();
        }
      }
    });
  std::vector<double> rss;
  std::thread monitor([&] {
    while (!stop) {
      const auto a = std::chrono::steady_clock::now();
      RawConnection h(serve.port());
      const bool ok = h.ok() && h.send(test::http_request("GET", "/healthz")) && status_of(h.read_response(2)) == 200 &&
                      std::chrono::steady_clock::now() - a < std::chrono::seconds(2);
      ++health_checks;
      if (!ok) ++health_fail;
      rss.push_back(serve.rss_mib());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& c : clients) c.join();
  monitor.join();

  ASSERT_FALSE(rss.empty());
  const size_t warm = rss.size() / 4;
  const double at_warm = rss[warm];
  double top = 0;
  for (size_t i = warm; i < rss.size(); ++i) top = std::max(top, rss[i]);
  std::printf("  soak: %.0f s, %lld good + %lld bad requests, %lld health checks; RSS %.0f MiB after warm-up, "
              "max %.0f MiB after it (bound +%.0f)\n",
              seconds, static_cast<long long>(good.load()), static_cast<long long>(bad.load()),
              static_cast<long long>(health_checks.load()), at_warm, top, kRssBoundMib);
  for (auto& f : failures) std::printf("  failure: %s\n", f.c_str());
  EXPECT_EQ(good_failed.load(), 0);
  EXPECT_EQ(bad_5xx.load(), 0);
  EXPECT_EQ(health_fail.load(), 0);
  EXPECT_GT(good.load(), 100);
  EXPECT_LT(top - at_warm, kRssBoundMib);
  EXPECT_TRUE(serve.running()) << "the server died";
  EXPECT_EQ(serve.stop(), 0) << "the server did not stop cleanly";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace clipkit
