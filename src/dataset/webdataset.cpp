#include "dataset/webdataset.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "core/error.h"
#include "dataset/dataset_internal.h"
#include "io/tar_reader.h"

namespace clipkit::dataset {

namespace {

constexpr size_t kMaxExpansion = 10'000'000;

bool is_image_ext(const std::string& e) {
  return e == "jpg" || e == "jpeg" || e == "png" || e == "webp" || e == "gif" || e == "bmp";
}

// webdataset's base_plus_ext: "a/b/KEY.x.y" -> ("a/b/KEY", "x.y"), extension lower-cased.
bool split_key(const std::string& name, std::string* key, std::string* ext) {
  const size_t slash = name.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = name.find('.', base);
  if (dot == std::string::npos || dot == base) return false;
  *key = name.substr(0, dot);
  *ext = name.substr(dot + 1);
  for (char& c : *ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return true;
}

// The index of the '}' matching the '{' at `open`, or npos.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

std::vector<std::string> split_top_level_commas(const std::string& s) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}') --depth;
    if (s[i] == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

std::optional<int64_t> parse_int(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return s[0] == '-' ? -v : v;
}

// "{A..B}" / "{A..B..STEP}" -> the numbers, zero padded as braceexpand does (when either end is
// written with a leading zero, every number is padded to the longer end's width).
std::optional<std::vector<std::string>> numeric_range(const std::string& body) {
  auto p1 = body.find("..");
  if (p1 == std::string::npos) return std::nullopt;
  const std::string a = body.substr(0, p1);
  std::string rest = body.substr(p1 + 2), b = rest, step_s;
  if (auto p2 = rest.find(".."); p2 != std::string::npos) b = rest.substr(0, p2), step_s = rest.substr(p2 + 2);
  auto va = parse_int(a), vb = parse_int(b);
  if (!va || !vb) {
    // character ranges {a..e}
    if (a.size() == 1 && b.size() == 1 && step_s.empty() && std::isalpha(static_cast<unsigned char>(a[0])) &&
        std::isalpha(static_cast<unsigned char>(b[0]))) {
      std::vector<std::string> out;
      const int d = a[0] <= b[0] ? 1 : -1;
      for (int c = a[0];; c += d) {
        out.push_back(std::string(1, static_cast<char>(c)));
        if (c == b[0]) break;
      }
      return out;
    }
    return std::nullopt;
  }
  int64_t step = 1;
  if (!step_s.empty()) {
    auto vs = parse_int(step_s);
    if (!vs || *vs == 0) return std::nullopt;
    step = std::abs(*vs);
  }
  auto padded = [](const std::string& s) { return s.size() > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0')); };
  const size_t width = padded(a) || padded(b) ? std::max(a.size(), b.size()) : 0;
  if (static_cast<uint64_t>(std::abs(*vb - *va)) / static_cast<uint64_t>(step) > kMaxExpansion)
    fail("brace range {{{}}} expands to too many names", body);
  std::vector<std::string> out;
  const int64_t dir = *va <= *vb ? 1 : -1;
  for (int64_t v = *va; dir > 0 ? v <= *vb : v >= *vb; v += dir * step) {
    std::string s = std::to_string(std::abs(v));
    const size_t w = width > 0 ? width - (v < 0 ? 1 : 0) : 0;
    if (s.size() < w) s.insert(0, w - s.size(), '0');
    out.push_back(v < 0 ? "-" + s : s);
  }
  return out;
}

void expand_into(const std::string& s, std::vector<std::string>& out) {
  size_t open = std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
      continue;
    }
    if (s[i] == '{') {
      open = i;
      break;
    }
  }
  if (open == std::string::npos) {
    std::string u;  // drop escapes
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}' || s[i + 1] == ',' || s[i + 1] == '\\'))
        ++i;
      u += s[i];
    }
    out.push_back(std::move(u));
    if (out.size() > kMaxExpansion) fail("shard pattern expands to more than {} names", kMaxExpansion);
    return;
  }
  const size_t close = matching_brace(s, open);
  if (close == std::string::npos) fail("shard pattern \"{}\": unbalanced '{{'", s);
  const std::string pre = s.substr(0, open), body = s.substr(open + 1, close - open - 1), post = s.substr(close + 1);
  std::vector<std::string> alts;
  auto parts = split_top_level_commas(body);
  if (parts.size() > 1) {
    alts = std::move(parts);
  } else if (auto r = numeric_range(body)) {
    alts = std::move(*r);
  } else {
    // not an expansion: keep the braces literally, expand what follows
    std::vector<std::string> tails;
    expand_into(post, tails);
    for (auto& t : tails) {
      std::vector<std::string> inner;
      expand_into(body, inner);
      for (auto& in : inner) expand_into(pre + "\\{" + in + "\\}" + t, out);
    }
    return;
  }
  for (auto& a : alts) expand_into(pre + a + post, out);
}

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

std::vector<std::string> brace_expand(const std::string& pattern) {
  std::vector<std::string> out;
  expand_into(pattern, out);
  return out;
}

bool is_shard_spec(const std::string& spec) { return spec.find(".tar") != std::string::npos && !detail::is_directory(spec); }

std::vector<std::string> expand_shard_spec(const std::string& spec) {
  std::vector<std::string> specs;
  for (size_t p = 0;;) {
    size_t q = spec.find("::", p);
    specs.push_back(spec.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 2;
  }
  std::vector<std::string> out;
  for (auto& one : specs) {
    if (one.empty()) continue;
    for (auto& name : brace_expand(one)) {
      if (has_glob_chars(name)) {
        glob_t g{};
        const int rc = ::glob(name.c_str(), GLOB_ERR, nullptr, &g);
        if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
          globfree(&g);
          fail("{}: no shard matches this pattern", name);
        }
        if (rc != 0) {
          globfree(&g);
          fail("{}: cannot list the shards matching this pattern", name);
        }
        std::vector<std::string> m(g.gl_pathv, g.gl_pathv + g.gl_pathc);
        globfree(&g);
        std::sort(m.begin(), m.end());
        for (auto& x : m)
          if (detail::is_regular_file(x)) out.push_back(x);
      } else {
        if (!detail::is_regular_file(name)) fail("{}: shard does not exist", name);
        out.push_back(name);
      }
    }
  }
  if (out.empty()) fail("\"{}\": names no shards", spec);
  return out;
}

// ---- the sample stream ----

struct ShardStream::State {
  std::vector<std::string> shards;
  ShardOptions o;
  size_t next_shard = 0;
  std::string cur_shard;
  int64_t cur_pos = -1;                       // the open shard's index in `shards`
  int64_t emit_pos = -1, emit_count = 0;      // the shard of the last sample returned, samples from it
  std::unique_ptr<io::FileSource> src;
  std::unique_ptr<io::TarReader> reader;
  // the member read ahead (first of the next group)
  bool have_pending = false;
  io::TarMember pending;
  std::string pending_key, pending_ext, pending_data;
  bool pending_loaded = false;
  int64_t returned = 0;
  detail::ReportBuilder report;

  void note_tar_problems() {
    for (auto& p : reader->problems()) {
      const std::string what = p.kind == "corrupt_header"       ? "corrupt tar header (members skipped to the next valid header)"
                               : p.kind == "truncated"          ? "truncated tar (the cut member and the rest are lost)"
                               : p.kind == "unsupported_entry"  ? "tar entry that is not a regular file (passed over)"
                                                                : "oversized tar extended header (passed over)";
      report.add(p.kind, what, [&] { return cur_shard + ": " + p.what; }, 1, p.kind != "unsupported_entry");
    }
  }

  // The next member of any shard (opening shards as needed); false after the last shard.
  bool next_member(io::TarMember* m) {
    while (true) {
      if (reader && reader->next(m)) return true;
      if (reader) {
        note_tar_problems();
        reader.reset();
        src.reset();
      }
      if (next_shard >= shards.size()) return false;
      cur_shard = shards[next_shard];
      cur_pos = static_cast<int64_t>(next_shard++);
      src = std::make_unique<io::FileSource>(cur_shard);
      reader = std::make_unique<io::TarReader>(*src);
    }
  }

  // Reads (or skips) the data of the member just returned by next_member.
  bool take_data(const std::string& ext, bool load_image, std::string* out) {
    out->clear();
    if (is_image_ext(ext) && !load_image) return true;
    return reader->read_data(out);
  }
};

ShardStream::ShardStream(std::vector<std::string> shards, ShardOptions o) : st_(std::make_unique<State>()) {
  st_->shards = std::move(shards);
  st_->o = std::move(o);
}
ShardStream::~ShardStream() = default;
ShardStream::ShardStream(ShardStream&&) noexcept = default;

bool ShardStream::next(ShardSample* s) { return next(s, st_->o.read_images); }

bool ShardStream::next(ShardSample* s, bool load_image) {
  State& S = *st_;
  while (true) {
    // gather one group: the pending member (if any) and the members that follow with its key
    std::string key, shard;
    int64_t pos = -1;
    struct Part {
      std::string ext, data, member;
      uint64_t offset = 0, size = 0;
      bool loaded = false;
    };
    std::vector<Part> parts;
    auto start_group = [&](const io::TarMember& m, const std::string& k, const std::string& e, std::string data,
                           bool loaded) {
      key = k;
      shard = S.cur_shard;
      pos = S.cur_pos;
      parts.push_back({e, std::move(data), m.name, m.data_offset, m.size, loaded});
    };
    if (S.have_pending) {
      S.have_pending = false;
      start_group(S.pending, S.pending_key, S.pending_ext, std::move(S.pending_data), S.pending_loaded);
    }
    io::TarMember m;
    while (S.next_member(&m)) {
      std::string k, e;
      if (!split_key(m.name, &k, &e)) continue;  // no extension: not part of any sample
      const bool same = !parts.empty() && k == key && S.cur_shard == shard;
      std::string data;
      const bool want = !is_image_ext(e) || load_image;
      if (want && !S.reader->read_data(&data)) continue;  // truncated: recorded, the shard ends
      if (parts.empty()) {
        start_group(m, k, e, std::move(data), want);
        continue;
      }
      if (!same) {
        S.have_pending = true;
        S.pending = m;
        S.pending_key = k;
        S.pending_ext = e;
        S.pending_data = std::move(data);
        S.pending_loaded = want;
        break;
      }
      if (std::any_of(parts.begin(), parts.end(), [&](const Part& p) { return p.ext == e; })) {
        S.report.add("duplicate_member", "duplicate member in a sample (the first is kept)",
                     [&] { return shard + ": " + m.name; }, 1, false);
        continue;
      }
      parts.push_back({e, std::move(data), m.name, m.data_offset, m.size, want});
    }
    if (parts.empty()) return false;

    // build the sample
    ShardSample out;
    out.shard = shard;
    out.key = key;
    Part* img = nullptr;
    const Part* txt = nullptr;
    const Part* js = nullptr;
    for (auto& p : parts) {
      if (!img && is_image_ext(p.ext)) img = &p;
      if (p.ext == "txt") txt = &p;
      if (p.ext == "json") js = &p;
    }
    if (!img) {
      S.report.add("no_image", "sample without an image member (.jpg .jpeg .png .webp .gif .bmp)",
                   [&] { return shard + ": key \"" + key + "\""; });
      continue;
    }
    if (js) {
      out.json = nlohmann::json::parse(js->data, nullptr, false);
      if (out.json.is_discarded() || !out.json.is_object()) {
        out.json = nullptr;
        S.report.add("invalid_json", "KEY.json is not a JSON object", [&] { return shard + ": " + js->member; }, 1,
                     false);
      }
    }
    if (S.o.caption_key == "txt") {
      if (txt) out.has_caption = true, out.caption = txt->data;
    } else if (out.json.is_object()) {
      auto it = out.json.find(S.o.caption_key);
      if (it != out.json.end() && it->is_string()) out.has_caption = true, out.caption = it->get<std::string>();
    }
    if (!out.has_caption && S.o.require_caption) {
      S.report.add("no_caption",
                   S.o.caption_key == "txt" ? std::string("no caption (no KEY.txt member)")
                                            : "no caption (KEY.json has no string field \"" + S.o.caption_key + "\")",
                   [&] { return shard + ": key \"" + key + "\""; });
      continue;
    }
    out.image_member = img->member;
    out.image_offset = img->offset;
    out.image_size = img->size;
    if (img->loaded) out.image = std::move(img->data);
    else if (load_image)  // read ahead before this sample's image was wanted: fetch it from its place
      out.image = io::read_member_at(shard, img->offset, img->size);
    out.index = S.returned++;
    if (pos != S.emit_pos) S.emit_pos = pos, S.emit_count = 0;
    out.shard_pos = pos;
    out.in_shard = S.emit_count++;
    *s = std::move(out);
    return true;
  }
}

LoadReport ShardStream::report() const {
  detail::ReportBuilder copy = st_->report;
  return copy.finish(st_->returned);
}

int64_t ShardStream::samples() const { return st_->returned; }

LoadReport for_each_shard_sample(const std::vector<std::string>& shards, const ShardOptions& o,
                                 const std::function<void(ShardSample&)>& fn) {
  ShardStream st(shards, o);
  ShardSample s;
  while (st.next(&s)) fn(s);
  return st.report();
}

CaptionDataset load_shard_captions(const std::string& spec, const std::string& caption_key) {
  auto shards = expand_shard_spec(spec);
  ShardOptions o;
  o.caption_key = caption_key;
  o.read_images = false;
  CaptionDataset ds;
  ds.root = spec;
  ds.source = shards.front();
  ds.report = for_each_shard_sample(shards, o, [&](ShardSample& s) {
    CaptionRow r;
    r.image_id = s.index;
    r.caption_id = s.index;
    r.caption = std::move(s.caption);
    r.image_path = s.path();
    r.file_name = s.image_member;
    ds.rows.push_back(std::move(r));
  });
  return ds;
}

}  // namespace clipkit::dataset
