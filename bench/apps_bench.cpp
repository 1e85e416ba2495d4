// Applications throughput and quality:
//   dedup search   exact blockwise range search (oneDNN sgemm + double verification) over N random
//                  unit vectors [N, D] with planted near pairs: images/s of the O(N^2) part
//   dedup scan     read + hash + decode + preprocess + embed of generated 160x120 JPEGs: images/s
//   video          decode-only frames/s of a generated 640x360 mpeg4 video, and decode + embed with
//                  every frame sampled (frames/s)
//   --quality      dedup precision/recall on the generated known-duplicate set over a threshold sweep
//   --files N      the whole `clipkit dedup --images` job on N generated files (N/8 families of an
//                  original, 6 copies and a similar-but-distinct image): files/s of each phase and
//                  end to end, and group precision/recall against the known families
//                  (--threshold T, default 0.99 for the random/tiny models; --keep-files DIR reuses DIR)
//
//   flock /tmp/clipkit-bench.lock build/bench/apps_bench [--model DIR] [--n 100000] [--dim 512]
//         [--scan 2000] [--video-seconds 20] [--quality] [--threads T]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "apps/dedup.h"
#include "io/atomic_file.h"
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

// Pair-level precision/recall of the groups against known families, without the O(N^2) pair loop:
// true pairs = sum over families C(n, 2); predicted = sum over groups C(n, 2); hits = sum over
// (group, family) C(n, 2).
void group_quality(const apps::DedupResult& res, const std::vector<int>& family, double* precision, double* recall) {
  auto c2 = [](int64_t n) { return n * (n - 1) / 2; };
  std::map<int, int64_t> fam_size;
  for (int f : family) fam_size[f]++;
  int64_t truth = 0, predicted = 0, hits = 0;
  for (auto& [f, n] : fam_size) truth += c2(n);
  for (auto& g : res.groups) {
    predicted += c2(static_cast<int64_t>(g.members.size()));
    std::map<int, int64_t> in;
    for (auto i : g.members) in[family[static_cast<size_t>(i)]]++;
    for (auto& [f, n] : in) hits += c2(n);
  }
  *precision = predicted ? double(hits) / double(predicted) : 1.0;
  *recall = truth ? double(hits) / double(truth) : 1.0;
}

void bench_files(const std::string& model, int64_t n, double threshold, std::string dir) {
  const bool keep = !dir.empty();
  if (dir.empty()) dir = (fs::temp_directory_path() / "clipkit_apps_bench_files").string();
  const double t0 = now();
  std::vector<std::string> files;
  std::vector<int> family;
  const std::string list = dir + "/families.tsv";
  if (keep && fs::exists(list)) {  // reuse a generated set
    std::ifstream f(list);
    std::string path;
    int fam;
    while (f >> fam >> path) family.push_back(fam), files.push_back(path);
  } else {
    fs::remove_all(dir);
    // 1,000 families per sub-folder keeps directories small
    const int64_t families = (n + 7) / 8;
    std::string tsv;
    for (int64_t f0 = 0; f0 < families; f0 += 1000) {
      const int fams = static_cast<int>(std::min<int64_t>(1000, families - f0));
      auto set = apps::synthetic::make_dedup_set(dir + "/" + std::to_string(f0 / 1000), fams, 6, 96, 72,
                                                 static_cast<uint64_t>(f0 + 11));
      for (size_t i = 0; i < set.files.size(); ++i) {
        const int fam = static_cast<int>(f0) * 2 + set.family[i];  // similar images get their own ids
        files.push_back(set.files[i]);
        family.push_back(fam);
        tsv += std::to_string(fam) + "\t" + set.files[i] + "\n";
      }
    }
    write_file_atomic(list, tsv);
  }
  const double t_gen = now() - t0;
  auto emb = pipeline::Embedder::load(model);
  apps::EmbedderEncoder enc(*emb, 64);
  std::vector<apps::ScanInput> in;
  for (auto& f : files) in.push_back({f, ""});
  const double t1 = now();
  auto scan = apps::scan_images(in, enc, 256);
  const double t2 = now();
  apps::DedupOptions o;
  o.threshold = threshold;
  auto res = apps::find_duplicates(scan.items, scan.emb.ptr<float>(), scan.emb.dim(1), o, [&](int64_t a, int64_t b) {
    return apps::files_equal(scan.items[static_cast<size_t>(a)].path, scan.items[static_cast<size_t>(b)].path);
  });
  const double t3 = now();
  auto j = apps::dedup_report_json(res, scan.items, threshold);
  write_file_atomic(dir + "/report.json", j.dump(2));
  write_file_atomic(dir + "/report.html", apps::dedup_report_html(res, scan.items, threshold));
  const double t4 = now();
  double p = 0, r = 0;
  group_quality(res, family, &p, &r);
  for (double th : {0.95, 0.98, 0.995, 0.998}) {  // the same scan at other thresholds
    apps::DedupOptions o2;
    o2.threshold = th;
    double p2 = 0, r2 = 0;
    group_quality(apps::find_duplicates(scan.items, scan.emb.ptr<float>(), scan.emb.dim(1), o2), family, &p2, &r2);
    std::printf("  threshold %.3f: precision %.4f recall %.4f\n", th, p2, r2);
  }
  const double total = t4 - t1, N = double(scan.items.size());
  std::printf("dedup files   %s, %zu files (%zu skipped), threshold %.3f: generate %.1f s | scan (read+hash+decode+"
              "embed) %.1f s = %.0f files/s | duplicates (hash groups + exact range search + verify) %.1f s = %.0f "
              "files/s | report JSON+HTML %.1f s | end to end %.1f s = %.0f files/s | %zu groups, precision %.4f "
              "recall %.4f\n",
              model.c_str(), scan.items.size(), scan.skipped.size(), threshold, t_gen, t2 - t1, N / (t2 - t1), t3 - t2,
              N / (t3 - t2), t4 - t3, total, N / total, res.groups.size(), p, r);
  if (!keep) fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = (fs::path(__FILE__).parent_path() / "../tests/data/models/tiny-clip").lexically_normal().string();
  int64_t n = 100000, dim = 512;
  int scan = 2000, video_s = 20, threads = 0;
  bool q = false;
  int64_t files = 0;
  double threshold = 0.99;
  std::string keep_dir;
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
    else if (a == "--files") files = std::stoll(next());
    else if (a == "--threshold") threshold = std::stod(next());
    else if (a == "--keep-files") keep_dir = next();
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
  if (files > 0) {
    bench_files(model, files, threshold, keep_dir);
    return 0;
  }
  if (n > 0) bench_search(n, dim);
  if (scan > 0) bench_scan(model, scan);
  if (video_s > 0) bench_video(model, video_s);
  return 0;
}
