// Byte-level BPE: the GPT-2 byte-to-unicode table, a vocabulary, merge ranks, the merge loop
// (OpenAI's: repeatedly merge every occurrence of the lowest-ranked adjacent pair, left to right)
// and a per-thread cache of finished words.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clipkit::text {

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others to U+0100 onwards.
const std::vector<std::string>& byte_to_unicode();  // [256] UTF-8 strings
int byte_from_unicode(char32_t cp);                  // inverse; -1 if cp is not in the table

class BpeModel {
 public:
  // vocab: token string -> id. merges: pairs in rank order. end_of_word: "</w>" for CLIP, "" else.
  BpeModel(std::unordered_map<std::string, int32_t> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           std::string end_of_word, int32_t unk_id);

  // Appends the ids of one pre-tokenized piece (raw UTF-8 bytes; the byte-level mapping happens here).
  // Thread-safe: the cache is per thread.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  // Same without the cache (the reference path for tests and cold measurements).
  void encode_piece_uncached(std::string_view piece, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if absent
  const std::string& id_to_token(int32_t id) const;   // "" if absent
  int32_t vocab_size() const { return vocab_size_; }
  size_t num_merges() const { return num_merges_; }
  const std::string& end_of_word() const { return end_of_word_; }

 private:
  struct MergeTable;
  int32_t intern(const std::string& s);

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  int32_t vocab_size_ = 0;
  std::string end_of_word_;
  int32_t unk_id_ = -1;
  size_t num_merges_ = 0;
  // Symbols: every string seen in the vocab or produced by a merge.
  std::unordered_map<std::string, int32_t> symbol_index_;
  std::vector<int32_t> symbol_vocab_id_;  // -1 when a symbol is not in the vocab
  int32_t byte_symbol_[256];
  int32_t byte_eow_symbol_[256];
  std::shared_ptr<MergeTable> merges_;
  uint64_t uid_;  // identifies this model's cache slot in each thread
};

}  // namespace clipkit::text
