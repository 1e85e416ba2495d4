// Applications throughput and quality:
//   dedup search   exact blockwise range search (oneDNN sgemm + double verification) over N random
//                  unit vectors [N, D] with planted near pairs: images/s of the O(N^2) part
//   dedup scan     read + hash + decode + preprocess + embed of generated 160x120 JPEGs: images/s
//   video          decode-only frames/s of a generated 640x360 mpeg4 video, and decode + embed with
//                  every frame sampled (frames/s)
//   --quality      dedup precision/recall on the generated known-duplicate set over a threshold sweep
//
//   flock /tmp/clipkit-bench.lock build/bench/apps_bench [--model DIR] [--n 100000] [--dim 512]
//         [--scan 2000] [--video-seconds 20] [--quality] [--threads T]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "apps/dedup.h"
#include "apps/synthetic.h"
#include "apps/video.h"
#include "apps/video_io.h"
#include "core/parallel.h"
#include "model/clip_model.h"
#include "pipeline/embedder.h"

using namespace clipkit;
namespace fs = std::filesystem;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void bench_search(int64_t N, int64_t D) {
  std::mt19937 g(1);
  std::normal_distribution<float> n;
  std::vector<float> x(static_cast<size_t>(N * D));
  for (auto& v : x) v = n(g);
  for (int64_t i = 0; i + 1 < N; i += 100)  // a near copy every 100 rows
    for (int64_t d = 0; d < D; ++d) x[(i + 1) * D + d] = x[i * D + d] + 0.05f * n(g);
  model::l2_normalize_rows(x.data(), N, D);
  const double t0 = now();
  auto pairs = apps::range_pairs(x.data(), N, D, 0.95);
  const double dt = now() - t0;
  std::printf("dedup search  N=%lld D=%lld: %.2f s, %.0f images/s, %.1f GFLOP/s, %zu pairs >= 0.95 (planted %lld)\n",
              static_cast<long long>(N), static_cast<long long>(D), dt, double(N) / dt,
              double(N) * double(N) * double(D) / dt / 1e9, pairs.size(), static_cast<long long>((N + 99) / 100));
}

void bench_scan(const std::string& model, int n) {
  const std::string dir = (fs::temp_directory_path() / "clipkit_apps_bench_scan").string();
  fs::remove_all(dir);
  auto set = apps::synthetic::make_dedup_set(dir, (n + 7) / 8, 6, 160, 120, 3);
  auto emb = pipeline::Embedder::load(model);
  apps::EmbedderEncoder enc(*emb);
  std::vector<apps::ScanInput> in;
  for (auto& f : set.files) in.push_back({f, ""});
  apps::scan_images(in, enc, 64);  // warm-up (page cache, oneDNN primitives)
  const double t0 = now();
  auto s = apps::scan_images(in, enc, 64);
  const double dt = now() - t0;
  std::printf("dedup scan    %s: %zu images in %.2f s = %.0f images/s (read+hash+decode+preprocess+embed)\n",
              model.c_str(), s.items.size(), dt, double(s.items.size()) / dt);
  fs::remove_all(dir);
}

void bench_video(const std::string& model, int seconds) {
  const std::string path = (fs::temp_directory_path() / "clipkit_apps_bench.mp4").string();
  {
    apps::VideoWriter w(path, 640, 360, 30);
    for (int f = 0; f < seconds * 30; ++f) w.write(apps::synthetic::scene(static_cast<uint64_t>(f / 90), 640, 360, f % 90 + 1));
  }
  {
    apps::VideoReader r(path);
    const double t0 = now();
    int64_t n = r.decode([](const apps::DecodedFrame&) { return false; },
                         [](const apps::DecodedFrame&, const image::Image&) { return true; });
    const double dt = now() - t0;
    std::printf("video decode  640x360 mpeg4: %lld frames in %.2f s = %.0f frames/s\n", static_cast<long long>(n), dt,
                double(n) / dt);
  }
  auto emb = pipeline::Embedder::load(model);
  apps::EmbedderEncoder enc(*emb);
  apps::VideoSampling s;
  s.every = 1.0 / 30;  // every frame
  s.max_short_side = emb->preprocess_config().shortest_edge;
  const double t0 = now();
  auto v = apps::embed_video(path, enc, s);
  const double dt = now() - t0;
  std::printf("video embed   %s: %zu of %lld frames sampled+embedded in %.2f s = %.0f frames/s\n", model.c_str(),
              v.t.size(), static_cast<long long>(v.decoded), dt, double(v.t.size()) / dt);
  fs::remove(path);
}

void quality(const std::string& model) {
  const std::string dir = (fs::temp_directory_path() / "clipkit_apps_bench_quality").string();
  fs::remove_all(dir);
  auto set = apps::synthetic::make_dedup_set(dir, 40, 6, 160, 120, 5);
  auto emb = pipeline::Embedder::load(model);
  apps::EmbedderEncoder enc(*emb);
  std::vector<apps::ScanInput> in;
  for (auto& f : set.files) in.push_back({f, ""});
  auto r = apps::scan_images(in, enc);
  std::printf("dedup quality %s on %zu generated images (40 families: original + exact, resized, recompressed, "
              "cropped, flipped, colour-shifted copies; 40 similar-but-distinct images)\n",
              model.c_str(), r.items.size());
  for (double th : {0.9, 0.95, 0.97, 0.98, 0.99, 0.995}) {
    apps::DedupOptions o;
    o.threshold = th;
    auto res = apps::find_duplicates(r.items, r.emb.ptr<float>(), r.emb.dim(1), o);
    std::vector<int> grp(r.items.size(), -1);
    for (size_t g = 0; g < res.groups.size(); ++g)
      for (auto i : res.groups[g].members) grp[static_cast<size_t>(i)] = static_cast<int>(g);
    int64_t tp = 0, fp = 0, fn = 0, ptp = 0, pfp = 0;
    std::map<std::string, std::pair<int, int>> per;
    for (size_t i = 0; i < r.items.size(); ++i)
      for (size_t j = i + 1; j < r.items.size(); ++j) {
        bool t = set.family[i] == set.family[j], p = grp[i] >= 0 && grp[i] == grp[j];
        tp += t && p, fp += !t && p, fn += t && !p;
        if (t && set.transform[i] == "original") per[set.transform[j]].first += p, per[set.transform[j]].second++;
      }
    for (auto& pr : res.near) {
      bool t = set.family[static_cast<size_t>(pr.i)] == set.family[static_cast<size_t>(pr.j)];
      ptp += t, pfp += !t;
    }
    std::printf("  threshold %.3f: groups precision %.3f recall %.3f | verified pairs precision %.3f |", th,
                tp + fp ? double(tp) / double(tp + fp) : 1.0, double(tp) / double(tp + fn),
                ptp + pfp ? double(ptp) / double(ptp + pfp) : 1.0);
    for (auto& [k, v] : per) std::printf(" %s %d/%d", k.c_str(), v.first, v.second);
    std::printf("\n");
  }
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = (fs::path(__FILE__).parent_path() / "../tests/data/models/tiny-clip").lexically_normal().string();
  int64_t n = 100000, dim = 512;
  int scan = 2000, video_s = 20, threads = 0;
  bool q = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") model = next();
    else if (a == "--n") n = std::stoll(next());
    else if (a == "--dim") dim = std::stoll(next());
    else if (a == "--scan") scan = std::stoi(next());
    else if (a == "--video-seconds") video_s = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--quality") q = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  set_num_threads(threads);
  std::printf("threads: %d\n", num_threads());
  if (q) {
    quality(model);
    return 0;
  }
  if (n > 0) bench_search(n, dim);
  if (scan > 0) bench_scan(model, scan);
  if (video_s > 0) bench_video(model, video_s);
  return 0;
}
