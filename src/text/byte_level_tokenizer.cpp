// GPT-2 / RoBERTa: added tokens matched in the raw text (leftmost-longest, with lstrip/rstrip),
// optional prefix space, GPT-2's pre-tokenizer, byte-level BPE; RoBERTa wraps in <s> ... </s>.
#include <string_view>

#include "core/error.h"
#include "text/bpe_tokenizer.h"
#include "text/pretokenize.h"

namespace clipkit::text {
namespace {

bool is_ascii_space(char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

class ByteLevelTokenizer final : public BpeTokenizerBase {
 public:
  explicit ByteLevelTokenizer(TokenizerSpec&& spec) : BpeTokenizerBase(std::move(spec)) {
    wrap_ = type_ == "roberta";
    for (const auto& a : added_)
      if (!a.content.empty()) first_byte_[static_cast<unsigned char>(a.content[0])] = true;
  }

  Encoding encode(std::string_view text, const EncodeOptions& o) const override {
    const bool wrap = wrap_ && o.add_special_tokens;
    check_options(o, wrap);
    std::vector<int32_t> ids;
    ids.reserve(reserve_hint(text.size(), o));
    if (o.add_special_tokens && !added_.empty())
      split_added(text, ids);
    else
      segment(text, ids);
    return finish(std::move(ids), wrap, o);
  }

 private:
  // Leftmost-longest match of the added tokens, as HF's AddedVocabulary; text between matches goes
  // through the BPE pipeline.
  void split_added(std::string_view text, std::vector<int32_t>& ids) const {
    size_t seg = 0, pos = 0;
    const size_t n = text.size();
    while (pos < n) {
      if (!first_byte_[static_cast<unsigned char>(text[pos])]) { ++pos; continue; }
      const AddedToken* best = nullptr;
      for (const auto& a : added_)
        if (!a.content.empty() && text.compare(pos, a.content.size(), a.content) == 0 &&
            (!best || a.content.size() > best->content.size()))
          best = &a;
      if (!best) { ++pos; continue; }
      size_t b = pos, e = pos + best->content.size();
      if (best->lstrip) while (b > seg && is_ascii_space(text[b - 1])) --b;
      if (best->rstrip) while (e < n && is_ascii_space(text[e])) ++e;
      segment(text.substr(seg, b - seg), ids);
      ids.push_back(best->id);
      seg = pos = e;
    }
    segment(text.substr(seg), ids);
  }

  void segment(std::string_view text, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    EncodeScratch& sc = encode_scratch();
    std::string_view t = text;
    if (add_prefix_space_ && text[0] != ' ') {
      sc.text.resize(text.size() + 1);
      sc.text[0] = ' ';
      text.copy(sc.text.data() + 1, text.size());
      t = sc.text;
    }
    if (is_ascii(t)) {
      gpt2_pretokenize(AsciiSource{t.data(), t.size()},
                       [&](size_t b, size_t e) { model_->encode_piece(t.substr(b, e - b), ids); });
    } else {
      utf8_decode(t, sc.cps);  // no normalization for byte-level BPE
      index_code_points(sc);
      const std::string& s = sc.text;
      gpt2_pretokenize(CodePointSource{sc.cps, sc.classes}, [&](size_t b, size_t e) {
        model_->encode_piece(std::string_view(s.data() + sc.offsets[b], sc.offsets[e] - sc.offsets[b]), ids);
      });
    }
  }

  bool wrap_ = false;
  bool first_byte_[256] = {};
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_tokenizer(TokenizerSpec&& spec) {
  return std::make_unique<ByteLevelTokenizer>(std::move(spec));
}

}  // namespace clipkit::text
