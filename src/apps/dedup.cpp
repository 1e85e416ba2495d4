#include "apps/dedup.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include <sys/stat.h>

#include "apps/html.h"
#include "apps/thumbnail.h"
#include "core/error.h"
#include "image/resample.h"
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

// A WebP file is lossless when its image chunk is VP8L (simple or extended layout).
bool webp_is_lossless(const std::string& b) {
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const std::string fourcc = b.substr(pos, 4);
    const uint32_t size = uint32_t(uint8_t(b[pos + 4])) | uint32_t(uint8_t(b[pos + 5])) << 8 |
                          uint32_t(uint8_t(b[pos + 6])) << 16 | uint32_t(uint8_t(b[pos + 7])) << 24;
    if (fourcc == "VP8L") return true;
    if (fourcc == "VP8 ") return false;
    pos += 8 + size + (size & 1);
  }
  return false;
}

// Mean squared difference of the luma of two equally sized images.
double luma_mse(const image::Image& a, const image::Image& b) {
  const size_t n = a.rgb.size() / 3;
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    const double ya = 0.299 * a.rgb[3 * i] + 0.587 * a.rgb[3 * i + 1] + 0.114 * a.rgb[3 * i + 2];
    const double yb = 0.299 * b.rgb[3 * i] + 0.587 * b.rgb[3 * i + 1] + 0.114 * b.rgb[3 * i + 2];
    s += (ya - yb) * (ya - yb);
  }
  return n ? s / double(n) : 0.0;
}

// Where one member stands in the keep rule (dedup.h), best first on each field.
struct KeepRank {
  bool protected_split = false, lossless = false;
  int64_t effective_pixels = 0;  // pixels, or those of the member an upscaled copy was made from
  bool upscaled = false;
  int64_t mtime = 0;
  size_t path_length = 0;
  std::string path;
};

// <0: a ranks before b (is the better keep), >0 after, 0 the same. *step names the deciding rule.
int compare_rank(const KeepRank& a, const KeepRank& b, int* step) {
  auto cmp = [&](int s, auto x, auto y, bool larger_first) {
    *step = s;
    if (x == y) return 0;
    return (x > y) == larger_first ? -1 : 1;
  };
  int c;
  if ((c = cmp(1, a.protected_split, b.protected_split, true))) return c;
  if ((c = cmp(2, a.lossless, b.lossless, true))) return c;
  if ((c = cmp(3, a.effective_pixels, b.effective_pixels, true))) return c;
  if ((c = cmp(4, a.upscaled, b.upscaled, false))) return c;
  if (a.mtime && b.mtime && (c = cmp(5, a.mtime, b.mtime, false))) return c;
  if ((c = cmp(6, a.path_length, b.path_length, false))) return c;
  return cmp(7, a.path, b.path, false);
}

std::string size_text(const DedupItem& it) { return fmt::format("{}x{}", it.width, it.height); }
std::string format_text(const DedupItem& it) { return it.format.empty() ? std::string("unknown format") : it.format; }

std::string keep_reason(int step, const DedupItem& k, const KeepRank& rk, const DedupItem& r, const KeepRank& rr) {
  switch (step) {
    case 1: return fmt::format("in the {} split: evaluation data is kept, the other copies go", k.split);
    case 2: return fmt::format("lossless {} over lossy {}", format_text(k), format_text(r));
    case 3:
      if (rr.upscaled && int64_t(r.width) * r.height >= int64_t(k.width) * k.height)
        return fmt::format("{} over {}: the larger copy is upscaled (no detail beyond {})", size_text(k), size_text(r),
                           size_text(k));
      return fmt::format("larger resolution: {} over {}", size_text(k), size_text(r));
    case 4: return fmt::format("the source: {} is an upscaled copy of it", size_text(r));
    case 5: return "the oldest file";
    case 6: return "the shortest path";
    default: return rk.path == rr.path ? "the only candidate" : "the first path";
  }
}

}  // namespace

void describe_file_bytes(const std::string& bytes, DedupItem* it) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  it->bytes = static_cast<int64_t>(bytes.size());
  it->hash = content_hash(d, bytes.size());
  const image::Format f = image::sniff_format(d, bytes.size());
  it->format = f == image::Format::Unknown ? "" : image::format_name(f);
  it->lossless = f == image::Format::Png || f == image::Format::Bmp || (f == image::Format::Webp && webp_is_lossless(bytes));
  struct stat st;
  if (::stat(it->path.c_str(), &st) == 0) it->mtime = static_cast<int64_t>(st.st_mtime);
}

bool holds_no_detail_beyond(const image::Image& big, int w, int h, double* ratio) {
  auto rz = [](const image::Image& im, int nw, int nh) { return image::resized(im, nw, nh, image::Resample::Bicubic); };
  if (ratio) *ratio = -1;
  if (w >= big.width || h >= big.height || w < 8 || h < 8) return false;
  const image::Image small = rz(big, w, h);
  const double above = luma_mse(big, rz(small, big.width, big.height));
  const double below = luma_mse(small, rz(rz(small, std::max(4, w / 2), std::max(4, h / 2)), w, h));
  if (below < 1e-3) return false;  // flat: nothing to tell by
  if (ratio) *ratio = above / below;
  return above / below < 0.3;
}

UpscaleProbe files_upscale_probe(const std::vector<DedupItem>& items) {
  auto cache = std::make_shared<std::map<int64_t, std::shared_ptr<image::Image>>>();
  return [&items, cache](int64_t big, int64_t small) {
    auto& slot = (*cache)[big];
    if (!slot) {
      slot = std::make_shared<image::Image>();
      try {
        *slot = image::decode_file(items[static_cast<size_t>(big)].path);
      } catch (const Error&) {  // unreadable now: resolution counts as recorded
      }
    }
    const auto& s = items[static_cast<size_t>(small)];
    return !slot->rgb.empty() && holds_no_detail_beyond(*slot, s.width, s.height);
  };
}

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
                            const std::function<bool(int64_t, int64_t)>& same_bytes, const UpscaleProbe& upscaled) {
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
    // Byte-identical members inside a near group.
    if (!all_same) {
      std::map<int64_t, std::vector<int64_t>> cls;
      for (int64_t m : mem) cls[same.find(m)].push_back(m);
      for (auto& [c, v] : cls)
        if (v.size() > 1) g.identical.push_back(v);
    }
    // The keep rule (dedup.h): rank every member, keep the best, say which step decided.
    std::map<int64_t, KeepRank> rank;
    for (int64_t m : mem) {
      const auto& it = items[m];
      rank[m] = {is_protected(o, it.split), it.lossless, int64_t(it.width) * it.height, false, it.mtime,
                 it.path.size(), it.path};
    }
    if (upscaled && !all_same && mem.size() <= 32)
      for (int64_t big : mem)
        for (int64_t small : mem) {
          const int64_t px_small = int64_t(items[small].width) * items[small].height;
          if (px_small <= 0 || px_small >= int64_t(items[big].width) * items[big].height) continue;
          if (same.find(big) == same.find(small) || !upscaled(big, small)) continue;
          rank[big].effective_pixels = std::min(rank[big].effective_pixels, px_small);
          rank[big].upscaled = true;
        }
    for (int64_t m : mem)
      if (rank[m].upscaled) g.upscaled.push_back(m);
    int step = 7;
    g.keep = *std::min_element(mem.begin(), mem.end(),
                               [&](int64_t a, int64_t b) { return compare_rank(rank[a], rank[b], &step) < 0; });
    int64_t runner_up = -1;
    for (int64_t m : mem)
      if (m != g.keep && (runner_up < 0 || compare_rank(rank[m], rank[runner_up], &step) < 0)) runner_up = m;
    compare_rank(rank[g.keep], rank[runner_up], &step);
    g.keep_reason = keep_reason(step, items[g.keep], rank[g.keep], items[runner_up], rank[runner_up]);
    if (all_same) g.keep_reason = "byte-identical copies; keeping " + g.keep_reason;
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
        describe_file_bytes(bytes, &it);
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
    json m = json::array(), details = json::array(), identical = json::array();
    for (int64_t i : g.members) {
      const auto& it = items[i];
      m.push_back(it.path);
      details.push_back({{"path", it.path}, {"format", it.format}, {"lossless", it.lossless}, {"width", it.width},
                         {"height", it.height}, {"bytes", it.bytes},
                         {"upscaled", std::count(g.upscaled.begin(), g.upscaled.end(), i) > 0}});
    }
    for (auto& set : g.identical) {
      json paths = json::array();
      for (int64_t i : set) paths.push_back(items[i].path);
      identical.push_back(paths);
    }
    groups.push_back({{"kind", g.kind}, {"members", m}, {"keep", items[g.keep].path}, {"keep_reason", g.keep_reason},
                      {"min_similarity", g.min_similarity}, {"identical", identical}, {"details", details}});
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
      "groups across splits &middot; <span id=nrm>{}</span> marked for removal</p>\n"
      "<p>Click an image to flip it between <b>keep</b> and <b>remove</b>, then <button id=export>Export "
      "removals</button> (a text file, one path per line, for <code>xargs</code> or <code>clipkit index remove "
      "--paths</code>).</p>\n",
      r.images, r.groups.size(), exact_groups, r.groups.size() - exact_groups, threshold, r.cross_split.size(),
      r.removals().size());
  auto tile = [&](const DupGroup& g, int64_t i) {
    const bool keep = i == g.keep;
    std::string img;
    try {
      img = "<img src=\"" + thumbnail_data_uri(items[i].path, thumb) + "\">";
    } catch (const std::exception& e) {
      img = "<div class=err>" + html_escape(e.what()) + "</div>";
    }
    std::string split = items[i].split.empty() ? "" : " [" + html_escape(items[i].split) + "]";
    std::string notes;
    if (std::count(g.upscaled.begin(), g.upscaled.end(), i)) notes += "<br><i>upscaled copy</i>";
    for (size_t s = 0; s < g.identical.size(); ++s)
      if (std::count(g.identical[s].begin(), g.identical[s].end(), i))
        notes += fmt::format("<br><i>byte-identical set {} ({} files)</i>", s + 1, g.identical[s].size());
    return fmt::format(
        "<figure class=\"{}\" data-path=\"{}\" title=\"click: keep / remove\">{}<figcaption>{}{}<br>{}, {}x{}, {} "
        "bytes{}<br><b>{}</b></figcaption></figure>",
        keep ? "keep" : "remove", html_escape(items[i].path), img, html_escape(items[i].path), split,
        html_escape(items[i].format.empty() ? "?" : items[i].format), items[i].width, items[i].height, items[i].bytes,
        notes, keep ? "keep" : "remove");
  };
  auto section = [&](const std::string& title, const std::vector<const DupGroup*>& gs) {
    h += "<h2>" + html_escape(title) + "</h2>\n";
    int shown = 0;
    for (auto* g : gs) {
      if (shown++ >= max_groups) {
        h += fmt::format("<p>&hellip; {} more groups in the JSON report</p>\n", gs.size() - size_t(max_groups));
        break;
      }
      h += fmt::format("<div class=group><div class=meta>{} &middot; {} members &middot; min cosine {:.4f} &middot; "
                       "keep: {}</div>",
                       g->kind, g->members.size(), g->min_similarity, html_escape(g->keep_reason));
      for (int64_t m : g->members) h += tile(*g, m);
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
  // Flip keep/remove by clicking; export the current removals (shown groups only) as a text file.
  h += R"JS(<script>
"use strict";
function count() { document.getElementById("nrm").textContent = document.querySelectorAll("figure.remove").length; }
for (const f of document.querySelectorAll("figure[data-path]")) {
  f.style.cursor = "pointer";
  f.addEventListener("click", () => {
    const keep = f.classList.toggle("keep");
    f.classList.toggle("remove", !keep);
    f.querySelector("figcaption b").textContent = keep ? "keep" : "remove";
    count();
  });
}
document.getElementById("export").addEventListener("click", () => {
  const paths = [...document.querySelectorAll("figure.remove")].map((f) => f.dataset.path);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([paths.join("\n") + (paths.length ? "\n" : "")], { type: "text/plain" }));
  a.download = "removals.txt";
  document.body.appendChild(a);
  a.click();
  a.remove();
});
count();
</script>
)JS";
  h += "</body></html>\n";
  return h;
}

}  // namespace clipkit::apps
