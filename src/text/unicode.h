// Unicode helpers for the tokenizers: UTF-8 decoding (invalid bytes become U+FFFD, as Python's
// errors="replace" would), NFC via utf8proc, and the exact character classes and case mapping that
// the reference tokenizers (Python `str`, the `regex` module) use.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clipkit::text {

// Decodes UTF-8 into code points; each invalid or truncated sequence becomes one U+FFFD.
void utf8_decode(std::string_view s, std::vector<char32_t>& out);
void utf8_append(std::string& out, char32_t cp);
bool is_ascii(std::string_view s);

// NFC (Unicode canonical composition) of a sequence of code points.
void nfc(std::vector<char32_t>& cps);

// Character classes of the pre-tokenization regexes.
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };
// \p{L} -> kLetter, \p{N} -> kNumber, regex-module \s (Unicode White_Space) -> kSpace.
CharClass char_class(char32_t cp);
// Python str.isspace() (what str.strip() removes): regex \s plus U+001C..U+001F.
bool is_python_space(char32_t cp);

// Python str.lower() on a whole text: full lowercase mapping (U+0130 -> "i\u0307") and the
// Final_Sigma rule for U+03A3.
void python_lower(std::vector<char32_t>& cps);

}  // namespace clipkit::text
