// Loading: tokenizer.json (both merge encodings) gives the same ids as vocab.json + merges.txt;
// type inference and override; malformed or missing files fail with a message naming the file.
#include <gtest/gtest.h>

#include "core/error.h"
#include "text/tokenizer.h"
#include "text/tokenizer_files.h"
#include "text/tokenizer_test_util.h"

namespace clipkit::text {
namespace {
using namespace testing;
using nlohmann::json;

json merges_json(const std::string& rel, bool as_pairs) {
  json m = json::array();
  for (const auto& [a, b] : read_merges(rel)) {
    if (as_pairs) m.push_back(json::array({a, b}));
    else m.push_back(a + " " + b);
  }
  return m;
}

json added(int id, const std::string& content) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", true}, {"special", true}};
}

// The tokenizer.json HF's CLIPTokenizerFast writes.
std::string clip_tokenizer_json(bool as_pairs) {
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = json::array({added(49406, "<|startoftext|>"), added(49407, "<|endoftext|>")});
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "NFC"}},
                                                  {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                                                  {{"type", "Lowercase"}}})}};
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"}}},
                     {"behavior", "Removed"},
                     {"invert", true}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}};
  j["post_processor"] = {{"type", "RobertaProcessing"},
                         {"sep", json::array({"<|endoftext|>", 49407})},
                         {"cls", json::array({"<|startoftext|>", 49406})},
                         {"trim_offsets", false},
                         {"add_prefix_space", false}};
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<|endoftext|>"},
                {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", "</w>"},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", json::parse(read_all(data_path("tokenizers/clip/vocab.json")))},
                {"merges", merges_json("tokenizers/clip/merges.txt", as_pairs)}};
  return j.dump();
}

std::string gpt2_tokenizer_json(bool as_pairs) {
  json j;
  j["added_tokens"] = json::array({added(50256, "<|endoftext|>")});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"},
                {"vocab", json::parse(read_all(data_path("tokenizers/gpt2/vocab.json")))},
                {"merges", merges_json("tokenizers/gpt2/merges.txt", as_pairs)}};
  return j.dump();
}

class TokenizerJson : public ::testing::TestWithParam<bool> {};

TEST_P(TokenizerJson, ClipSameIdsAsVocabFiles) {
  TempDir d;
  d.write("tokenizer.json", clip_tokenizer_json(GetParam()));
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->type(), "clip");
  EXPECT_EQ(tok->model_max_length(), 77);
  for (const auto& c : load_reference("reference/tokenize/clip.jsonl"))
    EXPECT_EQ(tok->encode(c.text).ids, c.ids) << "line " << c.line;
}

TEST_P(TokenizerJson, Gpt2SameIdsAsVocabFiles) {
  TempDir d;
  d.write("tokenizer.json", gpt2_tokenizer_json(GetParam()));
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->type(), "gpt2");
  EncodeOptions raw;
  raw.add_special_tokens = false;
  for (const auto& c : load_reference("reference/tokenize/gpt2.jsonl"))
    EXPECT_EQ(tok->encode(c.text, raw).ids, c.ids) << "line " << c.line;
  EXPECT_EQ(tok->encode("<|endoftext|>").ids, (std::vector<int32_t>{50256}));  // added token matched
}

INSTANTIATE_TEST_SUITE_P(MergeEncodings, TokenizerJson, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "pairs" : "strings"; });

TEST(TokenizerJsonRoberta, PostProcessorGivesRobertaType) {
  TempDir d;
  json v = json::parse(gpt2_tokenizer_json(true));
  json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  for (auto it = v["model"]["vocab"].begin(); it != v["model"]["vocab"].end(); ++it)
    if (it.key() != "<|endoftext|>") vocab[it.key()] = it.value().get<int>() + 4;
  v["model"]["vocab"] = vocab;
  v["added_tokens"] = json::array({added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"), added(50261, "<mask>")});
  v["added_tokens"][4]["lstrip"] = true;
  v["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", json::array({"</s>", 2})}, {"cls", json::array({"<s>", 0})}};
  d.write("tokenizer.json", v.dump());
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->type(), "roberta");
  EXPECT_EQ(tok->pad_id(), 1);
  int32_t a = tok->token_to_id("a");
  EXPECT_EQ(tok->encode("a <mask>").ids, (std::vector<int32_t>{0, a, 50261, 2}));
}

TEST(TokenizerLoading, InfersTypeFromVocabulary) {
  EXPECT_EQ(Tokenizer::from_dir(data_path("tokenizers/clip"))->type(), "clip");
  EXPECT_EQ(Tokenizer::from_dir(data_path("tokenizers/gpt2"))->type(), "gpt2");
  TempDir d;
  make_roberta_dir(d);
  std::filesystem::remove(d.file("tokenizer_config.json"));
  std::filesystem::remove(d.file("special_tokens_map.json"));
  auto tok = Tokenizer::from_dir(d.path());
  EXPECT_EQ(tok->type(), "roberta");
  EXPECT_EQ(tok->encode("a").ids, (std::vector<int32_t>{0, 64 + 4, 2}));
}

TEST(TokenizerLoading, TypeOverride) {
  TempDir d;
  make_roberta_dir(d);
  auto tok = Tokenizer::from_dir(d.path(), "gpt2");
  EXPECT_EQ(tok->type(), "gpt2");
  EncodeOptions raw;
  raw.add_special_tokens = false;
  EXPECT_EQ(tok->encode("a", raw).ids, (std::vector<int32_t>{64 + 4}));
  try {
    Tokenizer::from_dir(data_path("tokenizers/gpt2"), "clip");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_dir(data_path("tokenizers/clip"), "bert"), Error);
}

// Expects from_dir to throw an Error whose message contains every fragment.
void expect_error(const std::string& dir, std::initializer_list<std::string> fragments) {
  try {
    Tokenizer::from_dir(dir);
    ADD_FAILURE() << "no error for " << dir;
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " lacks " << f;
  }
}

TEST(TokenizerLoading, MissingFiles) {
  expect_error("/nonexistent/tokenizer/dir", {"/nonexistent/tokenizer/dir", "not a directory"});
  TempDir empty;
  expect_error(empty.path(), {empty.path(), "no tokenizer files"});
  TempDir only_vocab;
  only_vocab.copy_from("tokenizers/clip/vocab.json", "vocab.json");
  expect_error(only_vocab.path(), {only_vocab.file("merges.txt"), "missing"});
  TempDir only_merges;
  only_merges.copy_from("tokenizers/clip/merges.txt", "merges.txt");
  expect_error(only_merges.path(), {only_merges.file("vocab.json"), "missing"});
}

TEST(TokenizerLoading, MalformedFiles) {
  auto with = [](const std::string& name, const std::string& content) {
    auto d = std::make_unique<TempDir>();
    d->copy_from("tokenizers/clip/vocab.json", "vocab.json");
    d->copy_from("tokenizers/clip/merges.txt", "merges.txt");
    d->write(name, content);
    return d;
  };
  {
    auto d = with("vocab.json", "{\"a\": 1, ");
    expect_error(d->path(), {d->file("vocab.json"), "malformed JSON"});
  }
  {
    auto d = with("vocab.json", "[1, 2]");
    expect_error(d->path(), {d->file("vocab.json"), "JSON object"});
  }
  {
    auto d = with("vocab.json", "{\"a\": \"one\"}");
    expect_error(d->path(), {d->file("vocab.json"), "\"a\"", "not an integer"});
  }
  {
    auto d = with("merges.txt", "#version: 0.2\ni n\nt h e\n");
    expect_error(d->path(), {d->file("merges.txt") + ":3", "two tokens"});
  }
  {
    auto d = with("merges.txt", "#version: 0.2\n");
    expect_error(d->path(), {d->file("vocab.json"), "no merges"});
  }
  {
    auto d = with("tokenizer_config.json", "{\"pad_token\": ");
    expect_error(d->path(), {d->file("tokenizer_config.json"), "malformed JSON"});
  }
  {
    auto d = with("tokenizer_config.json", R"({"pad_token": "<nope>"})");
    expect_error(d->path(), {d->file("tokenizer_config.json"), "pad", "<nope>"});
  }
  {
    auto d = with("special_tokens_map.json", R"({"bos_token": 7})");
    expect_error(d->path(), {d->file("special_tokens_map.json"), "bos_token"});
  }
  {
    TempDir t;
    t.write("tokenizer.json", clip_tokenizer_json(false).substr(0, 5000));
    expect_error(t.path(), {t.file("tokenizer.json"), "malformed JSON"});
  }
  {
    TempDir t;
    t.write("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
    expect_error(t.path(), {t.file("tokenizer.json"), "WordPiece", "not supported"});
  }
  {
    TempDir t;
    t.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", 3]}})");
    expect_error(t.path(), {t.file("tokenizer.json"), "model.merges[1]"});
  }
  {
    TempDir t;
    t.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}}})");
    expect_error(t.path(), {t.file("tokenizer.json"), "model.merges"});
  }
}

// Issue 14: ids >= 2^32 wrapped (2^32 + 5 -> 5), negative ids became <unk>, and nesting 200,000 deep
// overflowed the stack. Each is now refused, naming the file and the entry.
TEST(TokenizerLoading, IdsOutOfRangeAndDeepNestingAreRefused) {
  const std::string merges = R"(["a b"])";
  auto tok_json = [&](const std::string& vocab, const std::string& added = "[]") {
    return R"({"added_tokens": )" + added + R"(, "model": {"type": "BPE", "vocab": )" + vocab + R"(, "merges": )" +
           merges + "}}";
  };
  const std::pair<std::string, std::vector<std::string>> cases[] = {
      {tok_json(R"({"a": 0, "b": 4294967301, "ab": 2})"), {"model.vocab[\"b\"]", "4294967301", "outside the token id range"}},
      {tok_json(R"({"a": 0, "b": -3, "ab": 2})"), {"model.vocab[\"b\"]", "-3", "outside"}},
      {tok_json(R"({"a": 0, "b": 2147483647, "ab": 2})"), {"2147483647", "outside"}},
      {tok_json(R"({"a": 0, "b": 1, "ab": 2})", R"([{"id": -1, "content": "<x>"}])"), {"added token \"<x>\"", "-1"}},
      {tok_json(R"({"a": 0, "b": 1, "ab": 2})", R"([{"id": 18446744073709551615, "content": "<x>"}])"), {"outside"}},
      {std::string(200000, '[') + std::string(200000, ']'), {"deeper than 128"}},
      {R"({"model": {"type": "BPE", "vocab": )" + std::string(100000, '{'), {"deeper than 128"}},
  };
  for (auto& [content, fragments] : cases) {
    TempDir t;
    t.write("tokenizer.json", content);
    std::vector<std::string> want = {t.file("tokenizer.json")};
    want.insert(want.end(), fragments.begin(), fragments.end());
    try {
      Tokenizer::from_dir(t.path());
      ADD_FAILURE() << "no error for " << content.substr(0, 120);
    } catch (const Error& e) {
      for (auto& w : want) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << w << " in " << e.what();
    }
  }
  {  // the slow layout's files take the same checks
    TempDir t;
    t.copy_from("tokenizers/clip/vocab.json", "vocab.json");
    t.copy_from("tokenizers/clip/merges.txt", "merges.txt");
    t.write("added_tokens.json", R"({"<new>": 4294967296})");
    expect_error(t.path(), {t.file("added_tokens.json"), "\"<new>\"", "outside"});
    t.write("added_tokens.json", "{}");
    t.write("tokenizer_config.json", R"({"added_tokens_decoder": {"-7": {"content": "<z>"}}})");
    expect_error(t.path(), {t.file("tokenizer_config.json"), "-7", "outside"});
  }
}

// HF writes model_max_length = int(1e30) for "no limit": it is no limit (no padding without
// max_length, as HF), not a pad length of 2^31 ids; an explicit pad length is bounded.
TEST(TokenizerLoading, HugeModelMaxLengthMeansNoLimit) {
  TempDir t;
  t.copy_from("tokenizers/gpt2/vocab.json", "vocab.json");
  t.copy_from("tokenizers/gpt2/merges.txt", "merges.txt");
  t.write("tokenizer_config.json", R"({"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1e30})");
  auto tok = Tokenizer::from_dir(t.path());
  EXPECT_EQ(tok->model_max_length(), 0);
  EncodeOptions o;
  o.pad_to_max_length = true;
  EXPECT_EQ(tok->encode("hello world", o).ids.size(), 2u);
  o.max_length = 2147483647;
  try {
    tok->encode("hello", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("padding to 2147483647 tokens"), std::string::npos) << e.what();
  }
  o.max_length = 8;
  EXPECT_EQ(tok->encode("hello", o).ids.size(), 8u);
}

TEST(TokenizerLoading, MalformedUtf8TextIsReplacedNotFatal) {
  auto tok = Tokenizer::from_dir(data_path("tokenizers/clip"));
  // A stray continuation byte becomes U+FFFD (as Python's errors="replace"), then ordinary BPE.
  auto bad = tok->encode(std::string("cat \x80 dog"));
  auto good = tok->encode("cat \xEF\xBF\xBD dog");
  EXPECT_EQ(bad.ids, good.ids);
}

}  // namespace
}  // namespace clipkit::text
