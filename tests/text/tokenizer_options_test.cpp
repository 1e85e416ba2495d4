// Truncation, padding and attention masks (HF tokenizer(text, max_length=..., truncation=True,
// padding="max_length")), for CLIP, RoBERTa and GPT-2; RoBERTa's special-token handling.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "text/tokenizer.h"
#include "text/tokenizer_test_util.h"

namespace clipkit::text {
namespace {
using namespace testing;

std::vector<int32_t> slice(const std::vector<int32_t>& v, size_t b, size_t e) { return {v.begin() + b, v.begin() + e}; }

TEST(TokenizerOptions, ClipTruncationKeepsEndToken) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  EXPECT_EQ(tok->model_max_length(), 77);
  int long_cases = 0;
  for (const auto& c : load_reference("reference/tokenize/clip.jsonl")) {
    EncodeOptions o;
    o.max_length = 77;
    Encoding e = tok->encode(c.text, o);
    if (c.ids.size() > 77) {
      ++long_cases;
      std::vector<int32_t> want = slice(c.ids, 0, 76);
      want.push_back(49407);
      EXPECT_EQ(e.ids, want) << c.text;
    } else {
      EXPECT_EQ(e.ids, c.ids);
    }
    EXPECT_EQ(e.attention_mask, std::vector<int32_t>(e.ids.size(), 1));
  }
  EXPECT_EQ(long_cases, 3);
}

TEST(TokenizerOptions, ClipPaddingAndMask) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  EXPECT_EQ(tok->pad_id(), 49407);  // HF's CLIP pad token defaults to <|endoftext|>
  EXPECT_EQ(tok->bos_id(), 49406);
  EXPECT_EQ(tok->eos_id(), 49407);
  EncodeOptions o;
  o.pad_to_max_length = true;  // max_length 0: pad to model_max_length
  Encoding e = tok->encode("A photo of a cat.", o);
  ASSERT_EQ(e.ids.size(), 77u);
  EXPECT_EQ(slice(e.ids, 0, 8), (std::vector<int32_t>{49406, 320, 1125, 539, 320, 2368, 269, 49407}));
  for (size_t i = 8; i < 77; ++i) EXPECT_EQ(e.ids[i], 49407);
  EXPECT_EQ(slice(e.attention_mask, 0, 8), std::vector<int32_t>(8, 1));
  EXPECT_EQ(slice(e.attention_mask, 8, 77), std::vector<int32_t>(69, 0));

  o.max_length = 10;
  e = tok->encode("a dog on a couch", o);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{49406, 320, 1929, 525, 320, 12724, 49407, 49407, 49407, 49407}));
  EXPECT_EQ(e.attention_mask, (std::vector<int32_t>{1, 1, 1, 1, 1, 1, 1, 0, 0, 0}));
  o.max_length = 4;  // truncate and pad together: exactly max_length, all real
  e = tok->encode("a dog on a couch", o);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{49406, 320, 1929, 49407}));
  EXPECT_EQ(e.attention_mask, std::vector<int32_t>(4, 1));
  o.max_length = 2;
  EXPECT_EQ(tok->encode("a dog", o).ids, (std::vector<int32_t>{49406, 49407}));
}

TEST(TokenizerOptions, ClipPadTokenFromConfig) {
  TempDir d;
  d.copy_from("tokenizers/clip/vocab.json", "vocab.json");
  d.copy_from("tokenizers/clip/merges.txt", "merges.txt");
  // Many HF CLIP checkpoints (e.g. LAION's) pad with "!" (id 0).
  d.write("tokenizer_config.json", R"({"tokenizer_class": "CLIPTokenizer", "pad_token": "!", "model_max_length": 77})");
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->pad_id(), 0);
  EncodeOptions o;
  o.max_length = 6;
  o.pad_to_max_length = true;
  EXPECT_EQ(tok->encode("cat", o).ids, (std::vector<int32_t>{49406, 2368, 49407, 0, 0, 0}));
}

TEST(TokenizerOptions, TinyClipCheckpointConfig) {
  TempDir d;
  d.copy_from("tokenizers/clip/vocab.json", "vocab.json");
  d.copy_from("tokenizers/clip/merges.txt", "merges.txt");
  d.copy_from("tokenizers/tiny-clip-config/tokenizer_config.json", "tokenizer_config.json");
  d.copy_from("tokenizers/tiny-clip-config/special_tokens_map.json", "special_tokens_map.json");
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->type(), "clip");
  EXPECT_EQ(tok->model_max_length(), 77);
  EXPECT_EQ(tok->pad_id(), 49407);
  EXPECT_EQ(tok->encode("A photo of a cat.").ids, (std::vector<int32_t>{49406, 320, 1125, 539, 320, 2368, 269, 49407}));
}

TEST(TokenizerOptions, MaxLengthTooSmallForSpecialTokens) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  EncodeOptions o;
  o.max_length = 1;
  EXPECT_THROW(tok->encode("a", o), Error);
  o.add_special_tokens = false;  // no special tokens: 1 is fine
  EXPECT_EQ(tok->encode("a dog", o).ids, (std::vector<int32_t>{320}));
  o.max_length = -1;
  EXPECT_THROW(tok->encode("a", o), Error);
}

TEST(TokenizerOptions, RobertaLayoutAndRunClipPadding) {
  TempDir d;
  make_roberta_dir(d);
  auto tok = Tokenizer::from_dir(d.path());
  ASSERT_EQ(tok->type(), "roberta");
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->model_max_length(), 512);
  auto gpt2 = Tokenizer::from_dir(data_path("tokenizers/gpt2"));
  EncodeOptions raw;
  raw.add_special_tokens = false;
  for (const auto& c : load_reference("reference/tokenize/gpt2.jsonl")) {
    if (c.text.find('<') != std::string::npos) continue;  // special strings are matched below
    std::vector<int32_t> want{0};
    for (int32_t id : c.ids) want.push_back(id + 4);
    want.push_back(2);
    EXPECT_EQ(tok->encode(c.text).ids, want) << c.text;
    EXPECT_EQ(gpt2->encode(c.text).ids, c.ids) << c.text;  // GPT-2 adds no special tokens
    // run_clip.py: max_length=128, padding="max_length", truncation=True.
    EncodeOptions rc;
    rc.max_length = 128;
    rc.pad_to_max_length = true;
    Encoding e = tok->encode(c.text, rc);
    ASSERT_EQ(e.ids.size(), 128u);
    size_t real = std::min<size_t>(want.size(), 128);
    for (size_t i = 0; i < 128; ++i) {
      EXPECT_EQ(e.attention_mask[i], i < real ? 1 : 0);
      if (i >= real) {
        EXPECT_EQ(e.ids[i], 1);
      }
    }
    EXPECT_EQ(e.ids[real - 1], 2);
    if (want.size() > 128) {
      EXPECT_EQ(slice(e.ids, 0, 127), slice(want, 0, 127));
    }
  }
}

TEST(TokenizerOptions, RobertaSpecialStringsInText) {
  TempDir d;
  make_roberta_dir(d);
  auto tok = Tokenizer::from_dir(d.path());
  int32_t hello = tok->token_to_id("hello"), world = tok->token_to_id("Ġworld"), sp = tok->token_to_id("Ġ");
  ASSERT_GT(hello, 3);
  // <s> is matched in the raw text; the space before it stays a "Ġ" token.
  EXPECT_EQ(tok->encode("hello <s> world").ids, (std::vector<int32_t>{0, hello, sp, 0, world, 2}));
  // <mask> has lstrip: it swallows the space on its left.
  EXPECT_EQ(tok->encode("hello <mask> world").ids, (std::vector<int32_t>{0, hello, 50261, world, 2}));
  // Raw mode is the bare byte-level BPE: no special strings recognised.
  EncodeOptions raw;
  raw.add_special_tokens = false;
  auto ids = tok->encode("<s>", raw).ids;
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], tok->token_to_id("<"));
}

TEST(TokenizerOptions, Gpt2EndOfTextInTextWithSpecialTokens) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/gpt2"));
  EXPECT_EQ(tok->encode("a<|endoftext|>").ids, (std::vector<int32_t>{64, 50256}));
  EncodeOptions raw;
  raw.add_special_tokens = false;
  auto ids = tok->encode("a<|endoftext|>", raw).ids;  // "a" "<|" "endoftext" "|>" as ordinary BPE
  EXPECT_EQ(ids.front(), 64);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
  EXPECT_EQ(tok->decode(ids), "a<|endoftext|>");
}

TEST(TokenizerOptions, AddPrefixSpace) {
  TempDir d;
  make_roberta_dir(d);
  d.write("tokenizer_config.json", R"({"tokenizer_class": "RobertaTokenizer", "add_prefix_space": true})");
  auto tok = Tokenizer::from_dir(d.path());
  int32_t hello = tok->token_to_id("Ġhello");
  ASSERT_GT(hello, 3);
  EXPECT_EQ(tok->encode("hello").ids, (std::vector<int32_t>{0, hello, 2}));
  EXPECT_EQ(tok->encode(" hello").ids, (std::vector<int32_t>{0, hello, 2}));  // no second space
  EXPECT_EQ(tok->encode("").ids, (std::vector<int32_t>{0, 2}));
}

TEST(TokenizerOptions, DecodeClip) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  EXPECT_EQ(tok->decode(tok->encode("A photo of a cat.").ids), "a photo of a cat .");
  EXPECT_EQ(tok->id_to_token(49406), "<|startoftext|>");
  EXPECT_EQ(tok->token_to_id("cat</w>"), 2368);
  EXPECT_EQ(tok->vocab_size(), 49408);
}

}  // namespace
}  // namespace clipkit::text

#include "text/bpe_tokenizer.h"

namespace clipkit::text {
namespace {
TEST(TokenizerInternals, AsciiClassTableMatchesUnicodeClasses) {
  for (char32_t c = 0; c < 128; ++c) EXPECT_EQ(AsciiSource::kAsciiClass[c], char_class(c)) << static_cast<int>(c);
}
}  // namespace
}  // namespace clipkit::text
