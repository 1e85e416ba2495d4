// Text -> token ids, exactly as Hugging Face's CLIP (CLIPTokenizerFast) and byte-level BPE
// (GPT2TokenizerFast, RobertaTokenizerFast) tokenizers do, loaded from the files HF checkpoints
// ship. See docs/tokenizers.md for the exact pipelines and the cases where references disagree.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clipkit::text {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> attention_mask;  // 1 for real tokens, 0 for padding
};

struct EncodeOptions {
  // true: HF's tokenizer(text): CLIP and RoBERTa wrap the ids in their start/end tokens, and GPT-2/
  // RoBERTa match special-token strings written in the text. false: the bare BPE ids (what OpenAI's
  // encoders give without the wrapping); CLIP still maps a literal "<|endoftext|>" as its
  // pre-tokenizer always does.
  bool add_special_tokens = true;
  int max_length = 0;              // 0 = no truncation; else truncate to this many ids (end token kept)
  // pad with pad_id() up to max_length (model_max_length() if 0; no padding when that is 0 too, as
  // HF does for a tokenizer without a maximum length); at most kMaxPadLength.
  bool pad_to_max_length = false;
};

inline constexpr int kMaxPadLength = 1 << 20;

class BpeModel;

class Tokenizer {
 public:
  // Loads from a folder holding tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json,
  // special_tokens_map.json). type: "" infers it from the files; "clip", "gpt2" or "roberta"
  // forces it. Throws clipkit::Error naming the file on missing or malformed files.
  static std::unique_ptr<Tokenizer> from_dir(const std::string& dir, const std::string& type = "");
  virtual ~Tokenizer();

  virtual Encoding encode(std::string_view text, const EncodeOptions& o = {}) const = 0;
  // OpenMP across texts (core/parallel.h thread count), results in input order.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, const EncodeOptions& o = {}) const;

  virtual int32_t pad_id() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // 77 for CLIP; from tokenizer_config (RoBERTa: 512); 0 = no limit (HF's int(1e30)).
  virtual int model_max_length() const = 0;
  virtual std::string type() const = 0;      // "clip" | "gpt2" | "roberta"

  // Vocabulary access (for tests, debugging and decoding).
  virtual int32_t vocab_size() const = 0;
  virtual int32_t token_to_id(std::string_view token) const = 0;  // -1 if absent
  virtual std::string id_to_token(int32_t id) const = 0;          // "" if absent
  // Bytes of the ids (special tokens skipped); CLIP's "</w>" becomes a space, as HF decodes.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

 protected:
  // Applies truncation, special tokens, padding and the mask to the bare content ids.
  Encoding finish(std::vector<int32_t>&& content, bool wrap, const EncodeOptions& o) const;
  void check_options(const EncodeOptions& o, bool wrap) const;
  // Capacity for the id vector so that finish() never reallocates in the common case.
  size_t reserve_hint(size_t text_bytes, const EncodeOptions& o) const;
};

}  // namespace clipkit::text
