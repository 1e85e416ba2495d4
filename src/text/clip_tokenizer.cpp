// CLIP: NFC, strip, whitespace runs -> one space, lowercase, CLIP's pre-tokenizer, byte-level BPE
// with "</w>" on each word's last symbol, <|startoftext|> ... <|endoftext|>.
#include <string_view>
#include <type_traits>

#include "core/error.h"
#include "text/bpe_tokenizer.h"
#include "text/pretokenize.h"

namespace clipkit::text {
namespace {

// Python's strip() on both ends, then every run of \s becomes one space. (A second strip, as the
// reference does after collapsing, changes nothing: the ends are already not whitespace.)
template <class Vec>
void clip_clean(Vec& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_python_space(static_cast<char32_t>(static_cast<std::make_unsigned_t<typename Vec::value_type>>(s[b])))) ++b;
  while (e > b && is_python_space(static_cast<char32_t>(static_cast<std::make_unsigned_t<typename Vec::value_type>>(s[e - 1])))) --e;
  size_t w = 0;
  bool in_space = false;
  for (size_t i = b; i < e; ++i) {
    auto c = static_cast<char32_t>(static_cast<std::make_unsigned_t<typename Vec::value_type>>(s[i]));
    if (c == ' ' || (c < 0x80 ? (c >= 0x09 && c <= 0x0D) : char_class(c) == CharClass::kSpace)) {
      if (!in_space) s[w++] = ' ';
      in_space = true;
    } else {
      s[w++] = s[i];
      in_space = false;
    }
  }
  s.resize(w);
}

class ClipTokenizer final : public BpeTokenizerBase {
 public:
  explicit ClipTokenizer(TokenizerSpec&& spec) : BpeTokenizerBase(std::move(spec)) {
    start_id_ = model_->token_to_id("<|startoftext|>");
    end_id_ = model_->token_to_id("<|endoftext|>");
    if (start_id_ < 0 || end_id_ < 0)
      fail("{}: not a CLIP vocabulary (no <|startoftext|> / <|endoftext|>)", vocab_source_);
  }

  Encoding encode(std::string_view text, const EncodeOptions& o) const override {
    check_options(o, o.add_special_tokens);
    std::vector<int32_t> ids;
    ids.reserve(reserve_hint(text.size(), o));
    EncodeScratch& sc = encode_scratch();
    if (is_ascii(text)) {
      // ASCII: NFC is the identity and lowercasing is per byte.
      sc.text.assign(text);
      clip_clean(sc.text);
      for (char& c : sc.text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      const std::string& s = sc.text;
      clip_pretokenize(AsciiSource{s.data(), s.size()},
                       [&](size_t b, size_t e) { piece(std::string_view(s.data() + b, e - b), ids); });
    } else {
      utf8_decode(text, sc.cps);
      nfc(sc.cps);
      clip_clean(sc.cps);
      python_lower(sc.cps);
      index_code_points(sc);
      const std::string& s = sc.text;
      clip_pretokenize(CodePointSource{sc.cps, sc.classes}, [&](size_t b, size_t e) {
        piece(std::string_view(s.data() + sc.offsets[b], sc.offsets[e] - sc.offsets[b]), ids);
      });
    }
    return finish(std::move(ids), o.add_special_tokens, o);
  }

 private:
  void piece(std::string_view p, std::vector<int32_t>& ids) const {
    if (p.size() >= 13 && p[0] == '<') {  // the pre-tokenizer's special-token alternatives
      if (p == "<|startoftext|>") { ids.push_back(start_id_); return; }
      if (p == "<|endoftext|>") { ids.push_back(end_id_); return; }
    }
    model_->encode_piece(p, ids);
  }

  int32_t start_id_ = -1, end_id_ = -1;
};

}  // namespace

std::unique_ptr<Tokenizer> make_clip_tokenizer(TokenizerSpec&& spec) {
  return std::make_unique<ClipTokenizer>(std::move(spec));
}

}  // namespace clipkit::text
