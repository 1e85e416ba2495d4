// Exact parity with the reference ids (OpenAI CLIP SimpleTokenizer + NFC, OpenAI GPT-2 encoder) for
// all 303 texts of tests/data/reference/tokenize.
#include <gtest/gtest.h>

#include "core/parallel.h"
#include "text/tokenizer_test_util.h"
#include "text/tokenizer.h"

namespace clipkit::text {
namespace {
using namespace testing;

TEST(TokenizerReference, ClipMatchesEveryCase) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  ASSERT_EQ(tok->type(), "clip");
  auto cases = load_reference("reference/tokenize/clip.jsonl");
  ASSERT_EQ(cases.size(), 303u);
  int bad = 0;
  for (const auto& c : cases) {
    Encoding e = tok->encode(c.text);
    if (e.ids != c.ids) {
      ++bad;
      ADD_FAILURE() << "line " << c.line << " text " << nlohmann::json(c.text).dump() << "\n  want " << ids_str(c.ids)
                    << "\n  got  " << ids_str(e.ids);
    }
    EXPECT_EQ(e.attention_mask, std::vector<int32_t>(c.ids.size(), 1));
  }
  EXPECT_EQ(bad, 0);
}

TEST(TokenizerReference, ClipRawIsTheContentIds) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  EncodeOptions raw;
  raw.add_special_tokens = false;
  for (const auto& c : load_reference("reference/tokenize/clip.jsonl")) {
    std::vector<int32_t> want(c.ids.begin() + 1, c.ids.end() - 1);
    EXPECT_EQ(tok->encode(c.text, raw).ids, want) << "line " << c.line;
  }
}

TEST(TokenizerReference, Gpt2RawMatchesEveryCase) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/gpt2"));
  ASSERT_EQ(tok->type(), "gpt2");
  auto cases = load_reference("reference/tokenize/gpt2.jsonl");
  ASSERT_EQ(cases.size(), 303u);
  EncodeOptions raw;
  raw.add_special_tokens = false;
  int bad = 0;
  for (const auto& c : cases) {
    Encoding e = tok->encode(c.text, raw);
    if (e.ids != c.ids) {
      ++bad;
      ADD_FAILURE() << "line " << c.line << " text " << nlohmann::json(c.text).dump() << "\n  want " << ids_str(c.ids)
                    << "\n  got  " << ids_str(e.ids);
    }
    // Every GPT-2 case round-trips.
    EXPECT_EQ(tok->decode(e.ids), c.text) << "line " << c.line;
  }
  EXPECT_EQ(bad, 0);
}

TEST(TokenizerReference, BatchMatchesSingleAcrossThreads) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  auto cases = load_reference("reference/tokenize/clip.jsonl");
  std::vector<std::string> texts;
  for (int rep = 0; rep < 4; ++rep)
    for (const auto& c : cases) texts.push_back(c.text);
  int saved = num_threads();
  set_num_threads(2);
  auto out = tok->encode_batch(texts);
  set_num_threads(saved);
  ASSERT_EQ(out.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(out[i].ids, cases[i % cases.size()].ids) << i;
}

// The input_ids / attention_mask stored with the model references (tiny-clip at 77, tiny-clip-roberta
// at run_clip.py's 128), from each checkpoint's own tokenizer files.
TEST(TokenizerReference, ModelReferenceInputs) {
  TempDir clip_dir, roberta_dir;
  clip_dir.copy_from("tokenizers/clip/vocab.json", "vocab.json");
  clip_dir.copy_from("tokenizers/clip/merges.txt", "merges.txt");
  clip_dir.copy_from("tokenizers/tiny-clip-config/tokenizer_config.json", "tokenizer_config.json");
  clip_dir.copy_from("tokenizers/tiny-clip-config/special_tokens_map.json", "special_tokens_map.json");
  make_roberta_dir(roberta_dir);
  auto clip = Tokenizer::from_dir(clip_dir.path());
  auto roberta = Tokenizer::from_dir(roberta_dir.path());
  std::ifstream f(data_path("reference/tokenize/model_inputs.jsonl"));
  std::string line;
  int rows = 0;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line);
    const Tokenizer& tok = j["model"] == "tiny-clip" ? *clip : *roberta;
    EncodeOptions o;
    o.max_length = j["max_length"].get<int>();
    o.pad_to_max_length = true;
    Encoding e = tok.encode(j["text"].get<std::string>(), o);
    EXPECT_EQ(e.ids, j["input_ids"].get<std::vector<int32_t>>()) << j["model"] << " " << j["text"];
    EXPECT_EQ(e.attention_mask, j["attention_mask"].get<std::vector<int32_t>>()) << j["model"] << " " << j["text"];
    ++rows;
  }
  EXPECT_EQ(rows, 16);
}

}  // namespace
}  // namespace clipkit::text
