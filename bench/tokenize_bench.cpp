// Tokenizer throughput: captions/s of clipkit's CLIP tokenizer on 1 and 2 threads over 100,000
// synthetic COCO-style captions, against a pure-Python re-implementation of OpenAI's
// simple_tokenizer (bench/tokenize_peer.py) measured in the same run on the same captions. Both
// sides run with warm caches (one untimed pass first); the ids are checked to be identical.
//
// usage: tokenize_bench [--tokenizer DIR] [--captions N] [--repeats N] [--python PATH] [--no-peer]
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "text/tokenizer.h"

namespace {
namespace fs = std::filesystem;
using clipkit::text::Encoding;
using clipkit::text::Tokenizer;

const fs::path kSourceDir = fs::path(__FILE__).parent_path();

// Deterministic COCO-style captions from word lists (an LCG, so every run sees the same texts).
std::vector<std::string> make_captions(size_t n) {
  static const char* dets[] = {"A", "The", "Two", "Three", "Several", "An old", "A young", "Some", "A group of", "a"};
  static const char* adjs[] = {"small", "large", "red", "white", "black", "brown", "wooden", "happy", "little", "tall",
                               "striped", "yellow", "shiny", "colorful", "empty", "busy", "old", "green", "blue", "dirty"};
  static const char* nouns[] = {"man", "woman", "dog", "cat", "train", "bus", "pizza", "giraffe", "elephant", "bicycle",
                                "surfboard", "kitchen", "child", "horse", "zebra", "laptop", "teddy bear", "skateboarder",
                                "motorcycle", "clock", "sandwich", "boat", "bird", "table", "umbrella", "player",
                                "truck", "sheep", "cow", "kite", "plate", "vase", "toilet", "bench", "couch", "stop sign"};
  static const char* verbs[] = {"sitting on", "standing next to", "riding", "holding", "looking at", "walking down",
                                "parked near", "eating", "flying over", "lying on", "playing with", "waiting at",
                                "jumping over", "carrying", "crossing", "leaning against"};
  static const char* places[] = {"the street", "a beach", "a field", "the kitchen counter", "a snowy hill", "the table",
                                 "a city sidewalk", "a grassy park", "the water", "a train station", "the living room",
                                 "a wooden fence", "the airport runway", "a busy intersection", "the ocean"};
  static const char* tails[] = {".", "", ".", " .", "!", ", in the afternoon.", " at night.", " on a sunny day.",
                                ", while people watch.", " in 2 hours.", " near 3 cars."};
  uint64_t s = 0x9E3779B97F4A7C15ull;
  auto next = [&](size_t m) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<size_t>((s >> 33) % m);
  };
  auto pick = [&](auto& arr) { return std::string(arr[next(std::size(arr))]); };
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string c = pick(dets) + " " + pick(adjs) + " " + pick(nouns) + " " + pick(verbs) + " ";
    if (next(3) == 0) c += pick(adjs) + " ";
    c += pick(places) + pick(tails);
    if (next(8) == 0) c += " It's " + pick(adjs) + ".";
    if (next(16) == 0)
      for (char& ch : c) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out.push_back(std::move(c));
  }
  return out;
}

uint64_t checksum(const std::vector<Encoding>& all) {
  const unsigned __int128 p = (1ull << 61) - 1;
  unsigned __int128 c = 0;
  for (const auto& e : all)
    for (size_t k = 0; k < e.ids.size(); ++k) c = (c * 1000003 + static_cast<unsigned __int128>(e.ids[k]) * (k + 1)) % p;
  return static_cast<uint64_t>(c);
}

struct Measure {
  double captions_per_s;
  uint64_t checksum;
};

Measure measure(const Tokenizer& tok, const std::vector<std::string>& caps, int threads, int repeats) {
  clipkit::set_num_threads(threads);
  auto out = tok.encode_batch(caps);  // warm: fills every thread's cache (untimed)
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto res = tok.encode_batch(caps);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    out.swap(res);  // the previous pass's results are freed outside the timed region
  }
  std::sort(times.begin(), times.end());
  return {static_cast<double>(caps.size()) / times[times.size() / 2], checksum(out)};
}

}  // namespace

int main(int argc, char** argv) {
  std::string tok_dir = (kSourceDir / ".." / "tests" / "data" / "tokenizers" / "clip").lexically_normal().string();
  std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  size_t n = 100000;
  int repeats = 5;
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--tokenizer") tok_dir = val();
    else if (a == "--captions") n = std::stoul(val());
    else if (a == "--repeats") repeats = std::stoi(val());
    else if (a == "--python") python = val();
    else if (a == "--no-peer") peer = false;
    else { std::fprintf(stderr, "usage: tokenize_bench [--tokenizer DIR] [--captions N] [--repeats N] [--python PATH] [--no-peer]\n"); return 2; }
  }
  auto caps = make_captions(n);
  size_t chars = 0;
  for (const auto& c : caps) chars += c.size();
  auto tok = Tokenizer::from_dir(tok_dir);
  std::printf("tokenize_bench: %zu synthetic COCO-style captions (%.1f chars avg), CLIP tokenizer %s\n", caps.size(),
              static_cast<double>(chars) / static_cast<double>(caps.size()), tok_dir.c_str());
  std::printf("warm caches on both sides; median of %d timed passes\n\n", repeats);
  Measure m1 = measure(*tok, caps, 1, repeats);
  Measure m2 = measure(*tok, caps, 2, repeats);
  std::printf("%-34s %8s %14s %10s\n", "implementation", "threads", "captions/s", "vs peer");
  double peer_rate = 0;
  bool ids_match = true;
  if (peer) {
    fs::path cap_file = fs::temp_directory_path() / ("clipkit-tokenize-bench-" + std::to_string(::getpid()) + ".txt");
    {
      std::ofstream f(cap_file);
      for (const auto& c : caps) f << c << '\n';
    }
    std::string cmd = python + " " + (kSourceDir / "tokenize_peer.py").string() + " " + tok_dir + " " + cap_file.string() +
                      " --repeats 3";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t k;
    while (p && (k = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, k);
    int rc = p ? pclose(p) : -1;
    fs::remove(cap_file);
    if (rc != 0 || out.empty()) {
      std::fprintf(stderr, "peer failed (%s); run with --no-peer to skip it\n", cmd.c_str());
      return 1;
    }
    auto j = nlohmann::json::parse(out);
    peer_rate = j["captions_per_s"].get<double>();
    ids_match = j["checksum"].get<uint64_t>() == m1.checksum;
    std::printf("%-34s %8d %14.0f %9.2fx\n", "peer: OpenAI simple_tokenizer (py)", 1, peer_rate, 1.0);
  }
  auto ratio = [&](double r) { return peer_rate > 0 ? r / peer_rate : 0.0; };
  std::printf("%-34s %8d %14.0f %9.2fx\n", "clipkit", 1, m1.captions_per_s, ratio(m1.captions_per_s));
  std::printf("%-34s %8d %14.0f %9.2fx\n", "clipkit", 2, m2.captions_per_s, ratio(m2.captions_per_s));
  std::printf("\nids identical across clipkit 1/2 threads: %s", m1.checksum == m2.checksum ? "yes" : "NO");
  if (peer) std::printf(", clipkit vs peer: %s", ids_match ? "yes" : "NO");
  std::printf("\n");
  return (m1.checksum == m2.checksum && ids_match) ? 0 : 1;
}
