#include "server/api_error.h"

#include "apps/classify.h"

namespace clipkit::server {

using json = nlohmann::json;

std::vector<std::string> string_list(const json& j, const char* key, int max, bool allow_csv) {
  if (!j.contains(key)) throw ApiError(400, fmt::format("missing \"{}\" (a list of strings)", key));
  const json& v = j[key];
  std::vector<std::string> out;
  if (allow_csv && v.is_string()) {
    out = apps::parse_label_list(v.get<std::string>());
  } else {
    if (!v.is_array()) throw ApiError(400, fmt::format("\"{}\" must be a non-empty list of strings", key));
    for (auto& s : v) {
      if (!s.is_string()) throw ApiError(400, fmt::format("\"{}\" must contain only strings", key));
      out.push_back(s.get<std::string>());
    }
  }
  if (out.empty()) throw ApiError(400, fmt::format("\"{}\" must be a non-empty list of strings", key));
  if (static_cast<int>(out.size()) > max)
    throw ApiError(413, fmt::format("\"{}\" has {} entries; at most {} per request", key, out.size(), max));
  return out;
}

double number_field(const json& j, const char* key, double def, double lo, double hi) {
  if (!j.contains(key)) return def;
  if (!j[key].is_number()) throw ApiError(400, fmt::format("\"{}\" must be a number", key));
  const double v = j[key].get<double>();
  if (!(v >= lo && v <= hi)) throw ApiError(400, fmt::format("\"{}\" must be between {} and {}", key, lo, hi));
  return v;
}

int64_t int_field(const json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  if (!j.contains(key)) return def;
  if (!j[key].is_number_integer()) throw ApiError(400, fmt::format("\"{}\" must be an integer", key));
  const int64_t v = j[key].get<int64_t>();
  if (v < lo || v > hi) throw ApiError(400, fmt::format("\"{}\" must be between {} and {}", key, lo, hi));
  return v;
}

bool bool_field(const json& j, const char* key, bool def) {
  if (!j.contains(key)) return def;
  if (!j[key].is_boolean()) throw ApiError(400, fmt::format("\"{}\" must be true or false", key));
  return j[key].get<bool>();
}

}  // namespace clipkit::server
