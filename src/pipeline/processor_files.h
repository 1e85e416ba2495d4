// The non-weight files of an HF checkpoint folder: what `processor.save_pretrained(dir)` writes.
#pragma once
#include <string>

namespace clipkit::pipeline {

// The folder holding clipkit's bundled assets (tokenizer vocabularies): $CLIPKIT_ASSETS if set,
// else the source tree's assets/ (compiled in) when it exists, else PREFIX/share/clipkit/assets
// beside an installed PREFIX/bin/clipkit. Throws Error when none exists.
std::string assets_dir();

// preprocessor_config.json for CLIPImageProcessor at the given size (shortest edge = crop = size).
void write_clip_preprocessor_config(const std::string& dir, int image_size);

// CLIP tokenizer files (vocab.json, merges.txt from `vocab_dir`, plus tokenizer_config.json and
// special_tokens_map.json as HF's CLIPTokenizer writes them).
void write_clip_tokenizer_files(const std::string& dir, const std::string& vocab_dir, int model_max_length = 77);

// RoBERTa tokenizer files from a GPT-2 vocabulary folder: RoBERTa's id layout (<s>=0, <pad>=1,
// </s>=2, <unk>=3, the GPT-2 tokens shifted by 4, <mask> last) and the HF RobertaTokenizer configs.
void write_roberta_tokenizer_files(const std::string& dir, const std::string& gpt2_vocab_dir, int model_max_length = 512);

// Copies the tokenizer files that exist in `src` (vocab.json, merges.txt, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json) into `dst`.
void copy_tokenizer_files(const std::string& src, const std::string& dst);

}  // namespace clipkit::pipeline
