#include "apps/dedup.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "apps/html.h"
#include "apps/thumbnail.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/tar_reader.h"

namespace clipkit::apps {
namespace fs = std::filesystem;

namespace {

struct UnionFind {
  std::vector<int64_t> p;
  explicit UnionFind(int64_t n) : p(static_cast<size_t>(n)) { std::iota(p.begin(), p.end(), 0); }
  int64_t find(int64_t x) {
    while (p[x] != x) x = p[x] = p[p[x]];
    return x;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a), b = find(b);
    if (a != b) p[std::max(a, b)] = std::min(a, b);
  }
};

bool is_protected(const DedupOptions& o, const std::string& split) {
  return std::find(o.protected_splits.begin(), o.protected_splits.end(), split) != o.protected_splits.end();
}

}  // namespace

bool files_equal(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (!fs::is_regular_file(a, ec) || !fs::is_regular_file(b, ec)) {  // members of .tar shards
    try {
      return io::read_path_bytes(a) == io::read_path_bytes(b);
    } catch (const Error&) {
      return false;
    }
  }
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::vector<char> ba(1 << 16), bb(1 << 16);
  while (true) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount()) return false;
    if (fa.gcount() == 0) return true;
    if (!std::equal(ba.begin(), ba.begin() + fa.gcount(), bb.begin())) return false;
  }
}

std::vector<int64_t> DedupResult::removals() const {
  std::vector<int64_t> r;
  for (auto& g : groups)
    for (int64_t m : g.members)
      if (m != g.keep) r.push_back(m);
  std::sort(r.begin(), r.end());
  return r;
}

DedupResult find_duplicates(const std::vector<DedupItem>& items, const float* emb, int64_t D, const DedupOptions& o,
                            const std::function<bool(int64_t, int64_t)>& same_bytes) {
  const int64_t N = static_cast<int64_t>(items.size());
  if (!(o.threshold > -1.0 && o.threshold <= 1.0)) fail("dedup: threshold must be in (-1, 1], got {}", o.threshold);
  DedupResult r;
  r.images = N;
  UnionFind uf(N), same(N);  // uf: duplicate groups; same: byte-identical content classes

  // Exact duplicates: equal hash, confirmed byte for byte against each class representative.
  std::map<uint64_t, std::vector<int64_t>> by_hash;
  for (int64_t i = 0; i < N; ++i)
    if (items[i].hash != 0) by_hash[items[i].hash].push_back(i);
  for (auto& [h, v] : by_hash) {
    if (v.size() < 2) continue;
    std::vector<int64_t> reps;
    for (int64_t i : v) {
      bool matched = false;
      for (int64_t rep : reps)
        if (items[rep].bytes == items[i].bytes && (!same_bytes || same_bytes(rep, i))) {
          same.unite(rep, i);
          uf.unite(rep, i);
          matched = true;
          break;
        }
      if (!matched) reps.push_back(i);
    }
  }
  std::map<int64_t, int64_t> class_size;
  for (int64_t i = 0; i < N; ++i) class_size[same.find(i)]++;
  for (auto& [c, k] : class_size) r.exact_pairs += k * (k - 1) / 2;

  // Near duplicates: exact range search over the embeddings.
  if (N > 1 && D > 0) r.near = range_pairs(emb, N, D, o.threshold, o.block);
  for (auto& p : r.near) uf.unite(p.i, p.j);

  std::map<int64_t, std::vector<int64_t>> comps;
  for (int64_t i = 0; i < N; ++i) comps[uf.find(i)].push_back(i);
  // Edges per component, for the min similarity of big groups.
  std::map<int64_t, double> min_edge;
  for (auto& p : r.near) {
    int64_t c = uf.find(p.i);
    double s = same.find(p.i) == same.find(p.j) ? 1.0 : p.score;
    auto it = min_edge.find(c);
    if (it == min_edge.end()) min_edge[c] = s;
    else it->second = std::min(it->second, s);
  }
  for (auto& [root, mem] : comps) {
    if (mem.size() < 2) continue;
    DupGroup g;
    g.members = mem;
    bool all_same = true;
    for (int64_t m : mem) all_same &= same.find(m) == same.find(mem[0]);
    g.kind = all_same ? "exact" : "near";
    if (all_same) {
      g.min_similarity = 1.0;
    } else if (mem.size() <= 512 && D > 0) {
      // Groups are chained pairs, so two members may be further apart than the threshold.
      double mn = 1.0;
      for (size_t a = 0; a < mem.size(); ++a)
        for (size_t b = a + 1; b < mem.size(); ++b)
          if (same.find(mem[a]) != same.find(mem[b]))
            mn = std::min(mn, dot_exact(emb + mem[a] * D, emb + mem[b] * D, D));
      g.min_similarity = mn;
    } else {
      auto it = min_edge.find(root);
      g.min_similarity = it == min_edge.end() ? 1.0 : it->second;
    }
    // Keep: a protected (eval) split first, then most pixels, then largest file, then first path.
    g.keep = *std::min_element(mem.begin(), mem.end(), [&](int64_t a, int64_t b) {
      const auto &A = items[a], &B = items[b];
      bool pa = is_protected(o, A.split), pb = is_protected(o, B.split);
      if (pa != pb) return pa;
      int64_t xa = int64_t(A.width) * A.height, xb = int64_t(B.width) * B.height;
      if (xa != xb) return xa > xb;
      if (A.bytes != B.bytes) return A.bytes > B.bytes;
      return A.path < B.path;
    });
    std::set<std::string> splits;
    for (int64_t m : mem) splits.insert(items[m].split);
    if (splits.size() > 1) {
      CrossSplit c;
      c.kind = g.kind;
      c.members = mem;
      for (int64_t m : mem) c.splits.push_back(items[m].split);
      c.min_similarity = g.min_similarity;
      r.cross_split.push_back(std::move(c));
    }
    r.groups.push_back(std::move(g));
  }
  return r;
}

std::vector<std::string> list_image_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir);
  static const std::set<std::string> exts = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"};
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) fail("{}: cannot list: {}", dir, ec.message());
    if (!it->is_regular_file(ec)) continue;
    std::string e = it->path().extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (exts.count(e)) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ScanResult scan_images(const std::vector<ScanInput>& inputs, const Encoder& enc, int chunk, Progress* p) {
  ScanResult r;
  const int64_t N = static_cast<int64_t>(inputs.size());
  const int64_t C = std::max(1, chunk);
  std::vector<Tensor> parts;
  for (int64_t c0 = 0; c0 < N; c0 += C) {
    const int64_t n = std::min(C, N - c0);
    std::vector<image::Image> imgs(static_cast<size_t>(n));
    std::vector<DedupItem> its(static_cast<size_t>(n));
    std::vector<std::string> errs(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      const auto& in = inputs[static_cast<size_t>(c0 + i)];
      auto& it = its[static_cast<size_t>(i)];
      it.path = in.path;
      it.split = in.split;
      try {
        std::string bytes = io::read_path_bytes(in.path, in.offset, in.size);
        it.bytes = static_cast<int64_t>(bytes.size());
        it.hash = content_hash(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        auto& im = imgs[static_cast<size_t>(i)];
        im = image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), in.path);
        it.width = im.width;
        it.height = im.height;
      } catch (const std::exception& e) {
        errs[static_cast<size_t>(i)] = e.what();
      }
    }
    std::vector<const image::Image*> ok;
    for (int64_t i = 0; i < n; ++i) {
      if (!errs[static_cast<size_t>(i)].empty()) {
        r.skipped.push_back({inputs[static_cast<size_t>(c0 + i)].path, errs[static_cast<size_t>(i)]});
        continue;
      }
      ok.push_back(&imgs[static_cast<size_t>(i)]);
      r.items.push_back(std::move(its[static_cast<size_t>(i)]));
    }
    if (!ok.empty()) parts.push_back(enc.encode_images(ok));
    if (p) p->add(n);
  }
  r.emb = parts.empty() ? Tensor::zeros(DType::F32, {0, enc.dim()}) : pipeline::concat_rows(parts, enc.dim());
  return r;
}

nlohmann::json dedup_report_json(const DedupResult& r, const std::vector<DedupItem>& items, double threshold) {
  using nlohmann::json;
  json groups = json::array(), cross = json::array();
  for (auto& g : r.groups) {
    json m = json::array();
    for (int64_t i : g.members) m.push_back(items[i].path);
    groups.push_back({{"kind", g.kind}, {"members", m}, {"keep", items[g.keep].path}, {"min_similarity", g.min_similarity}});
  }
  for (auto& c : r.cross_split) {
    json m = json::array();
    for (int64_t i : c.members) m.push_back(items[i].path);
    cross.push_back({{"members", m}, {"splits", c.splits}, {"kind", c.kind}, {"min_similarity", c.min_similarity}});
  }
  json rm = json::array();
  for (int64_t i : r.removals()) rm.push_back(items[i].path);
  int64_t exact_groups = 0;
  for (auto& g : r.groups) exact_groups += g.kind == "exact";
  return {{"groups", groups},
          {"cross_split", cross},
          {"images", r.images},
          {"threshold", threshold},
          {"summary",
           {{"groups", r.groups.size()},
            {"exact_groups", exact_groups},
            {"near_groups", static_cast<int64_t>(r.groups.size()) - exact_groups},
            {"exact_pairs", r.exact_pairs},
            {"near_pairs", r.near.size()},
            {"cross_split_groups", r.cross_split.size()},
            {"suggested_removals", rm.size()}}},
          {"removals", rm}};
}

std::string dedup_report_html(const DedupResult& r, const std::vector<DedupItem>& items, double threshold,
                              int max_groups, int thumb) {
  std::string h = html_head("clipkit dedup report");
  int64_t exact_groups = 0;
  for (auto& g : r.groups) exact_groups += g.kind == "exact";
  h += fmt::format(
      "<h1>Duplicate report</h1><p>{} images &middot; {} groups ({} exact, {} near, cosine &ge; {}) &middot; {} "
      "groups across splits &middot; {} suggested removals</p>\n",
      r.images, r.groups.size(), exact_groups, r.groups.size() - exact_groups, threshold, r.cross_split.size(),
      r.removals().size());
  auto tile = [&](int64_t i, bool keep) {
    std::string img;
    try {
      img = "<img src=\"" + thumbnail_data_uri(items[i].path, thumb) + "\">";
    } catch (const std::exception& e) {
      img = "<div class=err>" + html_escape(e.what()) + "</div>";
    }
    std::string split = items[i].split.empty() ? "" : " [" + html_escape(items[i].split) + "]";
    return fmt::format("<figure class=\"{}\">{}<figcaption>{}{}<br>{}x{}, {} bytes<br><b>{}</b></figcaption></figure>",
                       keep ? "keep" : "remove", img, html_escape(items[i].path), split, items[i].width,
                       items[i].height, items[i].bytes, keep ? "keep" : "remove");
  };
  auto section = [&](const std::string& title, const std::vector<const DupGroup*>& gs) {
    h += "<h2>" + html_escape(title) + "</h2>\n";
    int shown = 0;
    for (auto* g : gs) {
      if (shown++ >= max_groups) {
        h += fmt::format("<p>&hellip; {} more groups in the JSON report</p>\n", gs.size() - size_t(max_groups));
        break;
      }
      h += fmt::format("<div class=group><div class=meta>{} &middot; {} members &middot; min cosine {:.4f}</div>",
                       g->kind, g->members.size(), g->min_similarity);
      for (int64_t m : g->members) h += tile(m, m == g->keep);
      h += "</div>\n";
    }
    if (gs.empty()) h += "<p>none</p>\n";
  };
  std::vector<const DupGroup*> cross, all;
  for (auto& g : r.groups) {
    std::set<std::string> s;
    for (int64_t m : g.members) s.insert(items[m].split);
    (s.size() > 1 ? cross : all).push_back(&g);
  }
  section("Leakage across splits", cross);
  section("Duplicate groups", all);
  h += "</body></html>\n";
  return h;
}

}  // namespace clipkit::apps
