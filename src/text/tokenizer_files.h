// Reads a tokenizer folder into one plain description: vocab, merges, special tokens, settings.
// Understands HF's slow layout (vocab.json + merges.txt + tokenizer_config.json /
// special_tokens_map.json / added_tokens.json) and the fast one (tokenizer.json).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clipkit::text {

// The largest token id a tokenizer file may use (ids index dense tables; the largest real
// vocabularies hold about 256k entries).
inline constexpr int32_t kMaxTokenId = (1 << 22) - 1;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;
  bool lstrip = false, rstrip = false;
};

struct TokenizerSpec {
  std::string type;  // "clip" | "gpt2" | "roberta"
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::string end_of_word;  // "</w>" for CLIP
  std::vector<AddedToken> added_tokens;
  // Special token strings ("" = not set); resolved to ids by the tokenizer.
  std::string bos, eos, pad, unk;
  int model_max_length = 0;  // 0 = no limit (HF writes 1e30 for "no limit")
  bool add_prefix_space = false;
  std::string vocab_source;   // the file the vocabulary came from (for error messages)
  std::string config_source;  // the file the special tokens came from
};

// type: "" to infer, or "clip" / "gpt2" / "roberta". Throws clipkit::Error naming the file.
TokenizerSpec load_tokenizer_spec(const std::string& dir, const std::string& type);

// Parsers for the individual files (exposed for tests).
std::unordered_map<std::string, int32_t> parse_vocab_json(const std::string& text, const std::string& path);
std::vector<std::pair<std::string, std::string>> parse_merges_txt(const std::string& text, const std::string& path);

}  // namespace clipkit::text
