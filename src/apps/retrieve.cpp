#include "apps/retrieve.h"

#include <fmt/format.h>

#include <cstdlib>

#include "apps/thumbnail.h"
#include "core/error.h"
#include "core/json.h"

namespace clipkit::apps {

Filter Filter::parse(const std::string& s) {
  static const char* ops[] = {"!=", ">=", "<=", "=", "~", ">", "<"};
  for (const char* op : ops) {
    auto p = s.find(op);
    if (p == std::string::npos || p == 0) continue;
    // the first operator position wins ("a=b>c" is key a, value "b>c")
    size_t first = s.find_first_of("!=<>~");
    if (p != first) continue;
    Filter f{s.substr(0, p), op, s.substr(p + std::string(op).size())};
    return f;
  }
  fail("filter \"{}\": expected KEY=VALUE, KEY!=VALUE, KEY~TEXT, KEY>=X, KEY<=X, KEY>X or KEY<X", s);
}

namespace {
bool to_number(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return *end == '\0';
}
}  // namespace

bool Filter::accepts(const RetrievalItem& it) const {
  std::string val;
  bool found = true;
  if (key == "path") val = it.path;
  else if (key == "caption") val = it.caption;
  else if (it.metadata.is_object() && it.metadata.contains(key)) {
    const auto& j = it.metadata[key];
    val = j.is_string() ? j.get<std::string>() : json_text(j);
  } else found = false;
  if (!found) return op == "!=";
  if (op == "=") return val == value;
  if (op == "!=") return val != value;
  if (op == "~") return val.find(value) != std::string::npos;
  double a, b;
  if (!to_number(val, &a) || !to_number(value, &b)) return false;
  if (op == ">=") return a >= b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  return a < b;
}

nlohmann::json format_results(const std::string& query, const std::vector<Ranked>& ranked, int64_t candidates,
                              const RetrieveOptions& o) {
  using nlohmann::json;
  if (o.k <= 0) fail("retrieve: k must be positive, got {}", o.k);
  json results = json::array(), content = json::array();
  content.push_back({{"type", "text"}, {"text", "Images retrieved for \"" + query + "\", best first:"}});
  int rank = 0;
  for (auto& rk : ranked) {
    if (rank >= o.k || rk.score < o.min_score) break;
    const auto& it = rk.item;
    bool ok = true;
    for (auto& f : o.filters) ok = ok && f.accepts(it);
    if (!ok) continue;
    json r = {{"rank", ++rank}, {"path", it.path}, {"score", rk.score}, {"caption", it.caption}, {"metadata", it.metadata}};
    std::string line = fmt::format("[{}] {} (similarity {:.3f})", rank, it.path, rk.score);
    if (!it.caption.empty()) line += ": " + it.caption;
    content.push_back({{"type", "text"}, {"text", line}});
    if (o.thumbnails) {
      try {
        std::string uri = thumbnail_data_uri(it.path, o.thumb_size);
        r["image"] = uri;
        content.push_back({{"type", "image_url"}, {"image_url", {{"url", uri}}}});
      } catch (const std::exception& e) {
        r["image_error"] = e.what();
      }
    }
    results.push_back(r);
  }
  return {{"query", query}, {"k", o.k}, {"candidates", candidates}, {"results", results}, {"content", content}};
}

nlohmann::json retrieve(const std::string& query, const float* q, const std::vector<RetrievalItem>& items,
                        const float* emb, int64_t D, const RetrieveOptions& o) {
  if (o.k <= 0) fail("retrieve: k must be positive, got {}", o.k);
  const int64_t N = static_cast<int64_t>(items.size());
  auto hits = top_k(emb, N, D, q, o.k, [&](int64_t i) {
    for (auto& f : o.filters)
      if (!f.accepts(items[static_cast<size_t>(i)])) return false;
    return true;
  });
  std::vector<Ranked> ranked;
  for (auto& h : hits) ranked.push_back({items[static_cast<size_t>(h.row)], h.score});
  return format_results(query, ranked, N, o);
}

}  // namespace clipkit::apps
