#include "core/json.h"

#include <fmt/format.h>

#include "core/error.h"

namespace clipkit {

namespace {

using json = nlohmann::json;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code point of the \uXXXX escape starting at t[i] ('\\'), or -1.
int u_escape(std::string_view t, size_t i) {
  if (i + 6 > t.size() || t[i + 1] != 'u') return -1;
  int v = 0;
  for (size_t k = i + 2; k < i + 6; ++k) {
    const int h = hex_value(t[k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

struct Scan {
  size_t too_deep_at = std::string_view::npos;  // byte offset where nesting first exceeds the bound
  bool byte_escapes = false;                    // \udc80..\udcff outside a surrogate pair
};

// One pass over the text: container nesting outside strings, and escaped bytes inside them. Exact
// for valid JSON; for invalid JSON the parser reports the error (and builds no value).
Scan scan(std::string_view t) {
  Scan s;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (in_string) {
      if (c == '"') {
        in_string = false;
      } else if (c == '\\') {
        const int cp = u_escape(t, i);
        if (cp >= 0xD800 && cp <= 0xDBFF && u_escape(t, i + 6) >= 0xDC00 && u_escape(t, i + 6) <= 0xDFFF) {
          i += 11;  // a surrogate pair
        } else if (cp >= 0xDC80 && cp <= 0xDCFF) {
          s.byte_escapes = true;
          i += 5;
        } else {
          ++i;  // the escaped character (the rest of a \u escape is hex digits: no quote, no backslash)
        }
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        s.too_deep_at = i;
        return s;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return s;
}

// Byte escapes become "\u0000" + the two hex digits and a real "\u0000" becomes two, so that after
// parsing, a NUL in a string is followed either by a NUL (it was a NUL) or by the byte's hex digits.
std::string mark_byte_escapes(std::string_view t) {
  std::string out;
  out.reserve(t.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (in_string && c == '\\') {
      const int cp = u_escape(t, i);
      if (cp >= 0xD800 && cp <= 0xDBFF && u_escape(t, i + 6) >= 0xDC00 && u_escape(t, i + 6) <= 0xDFFF) {
        out.append(t.substr(i, 12));
        i += 11;
      } else if (cp >= 0xDC80 && cp <= 0xDCFF) {
        out += "\\u0000";
        out.append(t.substr(i + 4, 2));
        i += 5;
      } else if (cp == 0) {
        out += "\\u0000\\u0000";
        i += 5;
      } else {
        out += c;
        if (i + 1 < t.size()) out += t[++i];
      }
      continue;
    }
    if (c == '"') in_string = !in_string;
    out += c;
  }
  return out;
}

std::string unmark(const std::string& s) {
  if (s.find('\0') == std::string::npos) return s;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\0') {
      out += s[i];
    } else if (i + 1 < s.size() && s[i + 1] == '\0') {
      out += '\0';
      ++i;
    } else if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    }
  }
  return out;
}

void unmark_all(json& j) {
  if (j.is_string()) {
    j = unmark(j.get_ref<const std::string&>());
  } else if (j.is_array()) {
    for (auto& v : j) unmark_all(v);
  } else if (j.is_object()) {
    json out = json::object();
    for (auto& [k, v] : j.items()) {
      unmark_all(v);
      out[unmark(k)] = std::move(v);
    }
    j = std::move(out);
  }
}

std::string depth_error(size_t at) {
  return fmt::format("JSON nested deeper than {} levels (at byte {})", kMaxJsonDepth, at);
}

// Length of the well-formed UTF-8 sequence at s[i], or 0.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}

void write_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
      continue;
    }
    const size_t n = utf8_length(s, i);
    if (n == 0) {
      out += fmt::format("\\udc{:02x}", c);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

template <typename J>
void write(std::string& out, const J& j, int indent, int level) {
  const bool pretty = indent >= 0;
  auto newline = [&](int l) {
    out += '\n';
    out.append(static_cast<size_t>(indent * l), ' ');
  };
  if (j.is_object()) {
    if (j.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!first) out += ',';
      first = false;
      if (pretty) newline(level + 1);
      write_string(out, it.key());
      out += pretty ? ": " : ":";
      write(out, it.value(), indent, level + 1);
    }
    if (pretty) newline(level);
    out += '}';
  } else if (j.is_array()) {
    if (j.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    bool first = true;
    for (const auto& v : j) {
      if (!first) out += ',';
      first = false;
      if (pretty) newline(level + 1);
      write(out, v, indent, level + 1);
    }
    if (pretty) newline(level);
    out += ']';
  } else if (j.is_string()) {
    write_string(out, j.template get_ref<const std::string&>());
  } else {
    out += j.dump();
  }
}

}  // namespace

bool try_parse_json(std::string_view text, json* out, std::string* why) {
  const Scan s = scan(text);
  if (s.too_deep_at != std::string_view::npos) {
    if (why) *why = depth_error(s.too_deep_at);
    return false;
  }
  try {
    if (s.byte_escapes) {
      *out = json::parse(mark_byte_escapes(text));
      unmark_all(*out);
    } else {
      *out = json::parse(text);
    }
  } catch (const json::exception& e) {
    if (why) *why = e.what();
    return false;
  }
  return true;
}

json parse_json(std::string_view text, const std::string& name) {
  json j;
  std::string why;
  if (!try_parse_json(text, &j, &why)) fail("{}: not valid JSON: {}", name, why);
  return j;
}

bool sax_parse_json(std::string_view text, json::json_sax_t* sax, std::string* why) {
  const Scan s = scan(text);
  if (s.too_deep_at != std::string_view::npos) {
    if (why) *why = depth_error(s.too_deep_at);
    return false;
  }
  if (!json::sax_parse(text.begin(), text.end(), sax)) {
    if (why && why->empty()) *why = "the JSON is malformed";
    return false;
  }
  return true;
}

std::string json_text(const json& j, int indent) {
  std::string out;
  write(out, j, indent, 0);
  return out;
}

std::string json_text(const nlohmann::ordered_json& j, int indent) {
  std::string out;
  write(out, j, indent, 0);
  return out;
}

size_t utf8_error_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

bool valid_utf8(std::string_view s) { return utf8_error_at(s) == std::string_view::npos; }

namespace {

// A JSON integer whose value an int64 holds (not a float, not an unsigned value above INT64_MAX).
bool holds_int64(const json& v) {
  return v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX));
}

}  // namespace

int64_t json_integer(const json& v, int64_t lo, int64_t hi, std::string_view what) {
  if (!holds_int64(v) || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail("{} must be an integer from {} to {}, got {}", what, lo, hi, json_text(v));
  return v.get<int64_t>();
}

int64_t json_integer_or(const json& obj, const char* key, int64_t dflt) {
  if (!obj.is_object()) return dflt;
  const auto it = obj.find(key);
  return it != obj.end() && holds_int64(*it) ? it->get<int64_t>() : dflt;
}

namespace {

// obj[key], or null when obj is not an object or has no such key.
const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// A value as an error message shows it: its JSON text, cut at about 60 bytes (between characters).
std::string brief(const json& v) {
  std::string s = json_text(v);
  if (s.size() <= 60) return s;
  size_t n = 60;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "...";
}

}  // namespace

std::string json_string_or(const json& obj, const char* key, std::string_view dflt, std::string_view what) {
  const json* v = field(obj, key);
  if (!v) return std::string(dflt);
  if (!v->is_string()) fail("{}: field \"{}\" must be a string, got {}", what, key, brief(*v));
  return v->get<std::string>();
}

double json_number_or(const json& obj, const char* key, double dflt, std::string_view what) {
  const json* v = field(obj, key);
  if (!v) return dflt;
  if (!v->is_number()) fail("{}: field \"{}\" must be a number, got {}", what, key, brief(*v));
  return v->get<double>();
}

bool json_bool_or(const json& obj, const char* key, bool dflt, std::string_view what) {
  const json* v = field(obj, key);
  if (!v) return dflt;
  if (!v->is_boolean()) fail("{}: field \"{}\" must be true or false, got {}", what, key, brief(*v));
  return v->get<bool>();
}

}  // namespace clipkit
