#include "index/index_choice.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "index/vector_index.h"

namespace clipkit::index {

namespace {

constexpr int64_t kExactUpTo = 50000;

int64_t pow2_near(double target) {
  int64_t p = 256;
  while (p * 2 <= target && p < 65536) p *= 2;
  return p;
}

}  // namespace

std::vector<IndexChoice> index_candidates(int64_t n, int64_t d) {
  std::vector<IndexChoice> out;
  if (n <= kExactUpTo) {
    out.push_back({"IDMap,Flat", 4 * d + 8, n * (4 * d + 8), 0, "exact search"});
    return out;
  }
  const std::string flat = choose_factory(n, d);  // "IVF<L2>,Flat"
  const int64_t l2 = std::stoll(flat.substr(3, flat.find(',') - 3));
  const int64_t l4 = pow2_near(4 * std::sqrt(static_cast<double>(n)));
  const int64_t cent2 = l2 * d * 4, cent4 = l4 * d * 4;
  out.push_back({flat, 4 * d + 8, n * (4 * d + 8) + cent2, l2, "exact codes"});
  out.push_back({"IVF" + std::to_string(l4) + ",SQ8", d + 8, n * (d + 8) + cent4 + 8 * d, l4, "8-bit scalar codes"});
  for (int64_t m = d / 2; m >= std::max<int64_t>(4, d / 32); m /= 2) {
    if (d % m) continue;
    // codes + coarse centroids + PQ codebooks (256 x d floats) + the OPQ rotation (d x d floats)
    const int64_t mem = n * (m + 8) + cent4 + 256 * d * 4 + d * d * 4;
    out.push_back({"OPQ" + std::to_string(m) + ",IVF" + std::to_string(l4) + ",PQ" + std::to_string(m), m + 8, mem, l4,
                   std::to_string(m) + "-byte product-quantizer codes"});
  }
  return out;
}

IndexChoice choose_index(int64_t n, int64_t d, int64_t max_bytes) {
  auto c = index_candidates(n, d);
  for (auto& x : c)
    if (x.memory_bytes <= max_bytes) {
      x.reason = x.reason + ", the largest within " + format_size(max_bytes);
      return x;
    }
  fail("{} vectors of dimension {} need at least {} ({}), over the index memory budget of {} -- raise "
       "--max-index-memory (with --on-disk the index may be larger than RAM)",
       n, d, format_size(c.back().memory_bytes), c.back().factory, format_size(max_bytes));
}

int64_t parse_size(const std::string& s0) {
  std::string s;
  for (char c : s0)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) fail("\"{}\" is not a size (expected e.g. 8G, 512M, 1.5GiB or a number of bytes)", s0);
  double v = 0;
  try {
    v = std::stod(s.substr(0, i));
  } catch (const std::exception&) {
    fail("\"{}\" is not a size (expected e.g. 8G, 512M, 1.5GiB or a number of bytes)", s0);
  }
  std::string u = s.substr(i);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u.ends_with("IB")) u.resize(u.size() - 2);
  else if (u.size() > 1 && u.ends_with("B")) u.resize(u.size() - 1);
  double mul = 1;
  if (u == "K") mul = 1024.0;
  else if (u == "M") mul = 1024.0 * 1024;
  else if (u == "G") mul = 1024.0 * 1024 * 1024;
  else if (u == "T") mul = 1024.0 * 1024 * 1024 * 1024;
  else if (!u.empty() && u != "B") fail("\"{}\" is not a size (unknown unit \"{}\"; use K, M, G or T)", s0, s.substr(i));
  if (!(v * mul >= 1) || v * mul > 9e18) fail("\"{}\" is not a usable size", s0);
  return static_cast<int64_t>(v * mul);
}

std::string format_size(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

std::vector<int> nprobe_ladder(int64_t nlist) {
  std::vector<int> out;
  for (int p = 1; p < nlist; p = p < 8 ? p * 2 : (out.size() % 2 ? p * 4 / 3 : p * 3 / 2)) out.push_back(p);
  out.push_back(static_cast<int>(nlist));
  return out;
}

ProbePoint pick_nprobe(const std::vector<ProbePoint>& sweep, double max_query_ms, double target_recall) {
  if (sweep.empty()) fail("no nprobe was measured");
  if (max_query_ms > 0) {
    double best = -1;
    for (auto& p : sweep)
      if (p.p50_ms <= max_query_ms) best = std::max(best, p.recall);
    if (best < 0) return *std::min_element(sweep.begin(), sweep.end(), [](auto& a, auto& b) { return a.p50_ms < b.p50_ms; });
    for (auto& p : sweep)
      if (p.p50_ms <= max_query_ms && p.recall >= best - 0.001) return p;
  }
  for (auto& p : sweep)
    if (p.recall >= target_recall) return p;
  return *std::max_element(sweep.begin(), sweep.end(), [](auto& a, auto& b) { return a.recall < b.recall; });
}

}  // namespace clipkit::index
