#include "text/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>

namespace clipkit::text {

bool is_ascii(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size(), i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ull) return false;
  }
  for (; i < n; ++i)
    if (static_cast<unsigned char>(p[i]) & 0x80) return false;
  return true;
}

void utf8_decode(std::string_view s, std::vector<char32_t>& out) {
  out.clear();
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { out.push_back(c); ++i; continue; }
    int len;
    char32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else { out.push_back(0xFFFD); ++i; continue; }
    int k = 1;
    for (; k < len && i + k < n && (p[i + k] & 0xC0) == 0x80; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out.push_back(0xFFFD);
      i += k;  // skip the bytes that looked like one sequence (Python's maximal-subpart rule)
      continue;
    }
    out.push_back(cp);
    i += len;
  }
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void nfc(std::vector<char32_t>& cps) {
  bool ascii = true;
  for (char32_t c : cps)
    if (c >= 0x80) { ascii = false; break; }
  if (ascii) return;
  // utf8proc_map does decomposition, canonical ordering and composition in one call.
  std::string s;
  s.reserve(cps.size() * 3);
  for (char32_t c : cps) utf8_append(s, c);
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return;  // only fails on invalid input, which utf8_decode never produces
  utf8_decode(std::string_view(reinterpret_cast<const char*>(out), static_cast<size_t>(n)), cps);
  std::free(out);
}

namespace {

bool is_regex_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's _PyUnicode_IsCased / _PyUnicode_IsCaseIgnorable, from the general category plus the
// few extra characters the Unicode properties add (Word_Break MidLetter/MidNumLet/Single_Quote).
bool is_cased(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) return true;
  auto ci = static_cast<utf8proc_int32_t>(c);
  return utf8proc_tolower(ci) != ci || utf8proc_toupper(ci) != ci;  // Other_Lowercase/Uppercase letters
}

bool is_case_ignorable(char32_t c) {
  switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0x5E: case 0x60: case 0xA8: case 0xAD: case 0xAF: case 0xB4:
    case 0xB7: case 0xB8: case 0x387: case 0x55F: case 0x5F4: case 0x2018: case 0x2019: case 0x2024:
    case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default: break;
  }
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

}  // namespace

CharClass char_class(char32_t c) {
  if (c < 0x80) {
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (is_regex_space(c)) return CharClass::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

bool is_python_space(char32_t c) { return is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

void python_lower(std::vector<char32_t>& cps) {
  const size_t n = cps.size();
  bool simple = true;
  for (char32_t c : cps)
    if (c >= 0x80) { simple = false; break; }
  if (simple) {
    for (char32_t& c : cps)
      if (c >= 'A' && c <= 'Z') c += 32;
    return;
  }
  std::vector<char32_t> out;
  out.reserve(n + 4);
  for (size_t i = 0; i < n; ++i) {
    char32_t c = cps[i];
    if (c == 0x130) {  // the one unconditional multi-character lowercase mapping
      out.push_back('i');
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      // Final_Sigma: cased (case-ignorable)* SIGMA !((case-ignorable)* cased), on the original text.
      size_t j = i;
      while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(cps[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < n && is_case_ignorable(cps[k])) ++k;
        final_sigma = k == n || !is_cased(cps[k]);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  cps.swap(out);
}

}  // namespace clipkit::text
