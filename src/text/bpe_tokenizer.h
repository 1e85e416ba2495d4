// Internal: the shared base of the CLIP and byte-level tokenizers (vocabulary, special ids,
// decoding) and their factories. Users include text/tokenizer.h only.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "text/bpe.h"
#include "text/tokenizer.h"
#include "text/tokenizer_files.h"
#include "text/unicode.h"

namespace clipkit::text {

class BpeTokenizerBase : public Tokenizer {
 public:
  explicit BpeTokenizerBase(TokenizerSpec&& spec);

  int32_t pad_id() const override { return pad_id_; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  int model_max_length() const override { return model_max_length_; }
  std::string type() const override { return type_; }
  int32_t vocab_size() const override { return model_->vocab_size(); }
  int32_t token_to_id(std::string_view token) const override { return model_->token_to_id(token); }
  std::string id_to_token(int32_t id) const override { return model_->id_to_token(id); }
  std::string decode(const std::vector<int32_t>& ids) const override;

 protected:
  std::unique_ptr<BpeModel> model_;
  std::vector<AddedToken> added_;
  std::string type_;
  int32_t pad_id_ = -1, bos_id_ = -1, eos_id_ = -1, unk_id_ = -1;
  int model_max_length_ = 0;
  bool add_prefix_space_ = false;
  std::string vocab_source_;
};

std::unique_ptr<Tokenizer> make_clip_tokenizer(TokenizerSpec&& spec);
std::unique_ptr<Tokenizer> make_byte_level_tokenizer(TokenizerSpec&& spec);

// Pre-tokenizer sources (see pretokenize.h): raw ASCII bytes, or decoded code points with their
// classes and UTF-8 byte offsets.
struct AsciiSource {
  const char* p;
  size_t n;
  size_t size() const { return n; }
  char32_t cp(size_t i) const { return static_cast<unsigned char>(p[i]); }
  CharClass cls(size_t i) const { return ascii_class(static_cast<unsigned char>(p[i])); }
  static CharClass ascii_class(unsigned char c) { return kAsciiClass[c & 0x7F]; }
  // Same as char_class() for code points < 128 (checked by a test), without the call.
  static constexpr std::array<CharClass, 128> kAsciiClass = [] {
    std::array<CharClass, 128> t{};
    for (int c = 0; c < 128; ++c) {
      if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') t[c] = CharClass::kLetter;
      else if (c >= '0' && c <= '9') t[c] = CharClass::kNumber;
      else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) t[c] = CharClass::kSpace;
      else t[c] = CharClass::kOther;
    }
    return t;
  }();
};

struct CodePointSource {
  const std::vector<char32_t>& cps;
  const std::vector<CharClass>& classes;
  size_t size() const { return cps.size(); }
  char32_t cp(size_t i) const { return cps[i]; }
  CharClass cls(size_t i) const { return classes[i]; }
};

// Per-thread scratch buffers, reused across calls so encoding allocates only its result.
struct EncodeScratch {
  std::string text;
  std::vector<char32_t> cps;
  std::vector<CharClass> classes;
  std::vector<uint32_t> offsets;  // byte offset of code point i in `text`; [size] = end
};
EncodeScratch& encode_scratch();

// Fills s.text / s.classes / s.offsets from s.cps.
void index_code_points(EncodeScratch& s);

}  // namespace clipkit::text
