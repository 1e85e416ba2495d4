// The two pre-tokenization regexes, as hand-written scanners that reproduce the regex engine's
// alternation order and backtracking exactly (no regex library: this is the hot loop).
//   CLIP:  <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//          (IGNORECASE; runs on lowercased text)
//   GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Src: size(), cp(i) (code point), cls(i) (CharClass). emit(begin, end) gets code point indices.
#pragma once
#include <cstddef>

#include "text/unicode.h"

namespace clipkit::text {

// Simple case folding for the few characters that fold onto the ASCII letters used in the CLIP
// pattern's literal alternatives (the text is already lowercase): U+017F long s -> s.
inline char32_t clip_fold(char32_t c) { return c == 0x17F ? U's' : c; }

template <class Src>
inline bool clip_literal_at(const Src& s, size_t i, const char* lit, size_t len) {
  if (i + len > s.size()) return false;
  for (size_t k = 0; k < len; ++k)
    if (clip_fold(s.cp(i + k)) != static_cast<char32_t>(lit[k])) return false;
  return true;
}

template <class Src, class Emit>
void clip_pretokenize(const Src& s, Emit&& emit) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = s.cp(i);
    if (c == '<') {
      if (clip_literal_at(s, i, "<|startoftext|>", 15)) { emit(i, i + 15); i += 15; continue; }
      if (clip_literal_at(s, i, "<|endoftext|>", 13)) { emit(i, i + 13); i += 13; continue; }
    } else if (c == '\'' && i + 1 < n) {
      const char32_t d = clip_fold(s.cp(i + 1));
      if (d == 's' || d == 't' || d == 'm' || d == 'd') { emit(i, i + 2); i += 2; continue; }
      if (i + 2 < n) {
        const char32_t e = clip_fold(s.cp(i + 2));
        if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) { emit(i, i + 3); i += 3; continue; }
      }
    }
    const CharClass k = s.cls(i);
    if (k == CharClass::kLetter) {
      size_t j = i + 1;
      while (j < n && s.cls(j) == CharClass::kLetter) ++j;
      emit(i, j);
      i = j;
    } else if (k == CharClass::kNumber) {
      emit(i, i + 1);  // [\p{N}]: one character
      ++i;
    } else if (k == CharClass::kSpace) {
      ++i;
    } else {
      size_t j = i + 1;
      while (j < n && s.cls(j) == CharClass::kOther) ++j;
      emit(i, j);
      i = j;
    }
  }
}

template <class Src, class Emit>
void gpt2_pretokenize(const Src& s, Emit&& emit) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = s.cp(i);
    if (c == '\'' && i + 1 < n) {  // case-sensitive contractions
      const char32_t d = s.cp(i + 1);
      if (d == 's' || d == 't' || d == 'm' || d == 'd') { emit(i, i + 2); i += 2; continue; }
      if (i + 2 < n) {
        const char32_t e = s.cp(i + 2);
        if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) { emit(i, i + 3); i += 3; continue; }
      }
    }
    // " ?X+" for X in letter, number, other: an optional literal space, then a run of one class.
    size_t start = (c == ' ' && i + 1 < n && s.cls(i + 1) != CharClass::kSpace) ? i + 1 : i;
    const CharClass k = s.cls(start);
    if (k != CharClass::kSpace) {
      size_t j = start + 1;
      while (j < n && s.cls(j) == k) ++j;
      emit(i, j);
      i = j;
      continue;
    }
    // Whitespace at i: \s+(?!\S) takes the run minus its last character when a non-space
    // follows (that character then leads the next piece); a single one falls through to \s+.
    size_t j = i + 1;
    while (j < n && s.cls(j) == CharClass::kSpace) ++j;
    if (j < n && j - i >= 2) --j;
    emit(i, j);
    i = j;
  }
}

}  // namespace clipkit::text
