// clipkit tokenize: the CLI contract (flags, JSON lines, exit codes), checked on the reference cases.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kData = CLIPKIT_TEST_DATA;
const std::string kClip = kData + "/tokenizers/clip";
const std::string kGpt2 = kData + "/tokenizers/gpt2";

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Result {
  int rc;
  std::string out, err;
};

Result run(const std::vector<std::string>& args) {
  std::string errfile = (fs::temp_directory_path() / ("clipkit-tok-err-" + std::to_string(getpid()))).string();
  std::string cmd = quote(CLIPKIT_BINARY) + " tokenize";
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>" + quote(errfile);
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(errfile);
  r.err.assign(std::istreambuf_iterator<char>(f), {});
  fs::remove(errfile);
  return r;
}

std::vector<json> lines(const std::string& s) {
  std::vector<json> v;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t e = s.find('\n', pos);
    v.push_back(json::parse(s.substr(pos, e - pos)));
    pos = e + 1;
  }
  return v;
}

std::vector<json> reference(const std::string& name) {
  std::ifstream f(kData + "/reference/tokenize/" + name);
  std::vector<json> v;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("clipkit-tok-" + std::to_string(getpid()) + "-" + name)).string();
}

TEST(TokenizeCli, TextGivesOneJsonLinePerText) {
  Result r = run({"--tokenizer", kClip, "--text", "A photo of a cat.", "--text", "a dog"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"text\": \"A photo of a cat.\", \"ids\": [49406, 320, 1125, 539, 320, 2368, 269, 49407], "
            "\"attention_mask\": [1, 1, 1, 1, 1, 1, 1, 1]}\n"
            "{\"text\": \"a dog\", \"ids\": [49406, 320, 1929, 49407], \"attention_mask\": [1, 1, 1, 1]}\n");
}

TEST(TokenizeCli, ClipJsonlFileMatchesEveryReferenceCase) {
  auto ref = reference("clip.jsonl");
  std::string in = tmp_path("clip-in.jsonl"), out = tmp_path("clip-out.jsonl");
  {
    std::ofstream f(in);
    for (const auto& c : ref) f << json{{"text", c["text"]}}.dump() << "\n";
  }
  Result r = run({"--tokenizer", kClip, "--file", in, "--out", out, "--threads", "2"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");  // --out: nothing on stdout
  std::ifstream f(out);
  auto got = lines(std::string(std::istreambuf_iterator<char>(f), {}));
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(got[i]["text"], ref[i]["text"]) << i;  // input order, texts with newlines intact
    EXPECT_EQ(got[i]["ids"], ref[i]["ids"]) << ref[i]["text"];
    EXPECT_EQ(got[i]["attention_mask"].size(), ref[i]["ids"].size());
  }
  fs::remove(in);
  fs::remove(out);
}

TEST(TokenizeCli, Gpt2RawMatchesEveryReferenceCase) {
  auto ref = reference("gpt2.jsonl");
  std::string in = tmp_path("gpt2-in.jsonl");
  {
    std::ofstream f(in);
    for (const auto& c : ref) f << json{{"text", c["text"]}}.dump() << "\n";
  }
  Result r = run({"--tokenizer", kGpt2, "--file", in, "--raw"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(got[i]["ids"], ref[i]["ids"]) << ref[i]["text"];
  fs::remove(in);
}

TEST(TokenizeCli, TxtFileTruncationAndPadding) {
  std::string in = tmp_path("in.txt");
  std::ofstream(in) << "a dog on a couch\r\nA photo of a cat.\n";
  Result r = run({"--tokenizer", kClip, "--file", in, "--max-length", "6", "--pad"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["text"], "a dog on a couch");
  EXPECT_EQ(got[0]["ids"], json::parse("[49406, 320, 1929, 525, 320, 49407]"));
  EXPECT_EQ(got[0]["attention_mask"], json::parse("[1, 1, 1, 1, 1, 1]"));
  r = run({"--tokenizer", kClip, "--text", "cat", "--max-length", "6", "--pad"});
  EXPECT_EQ(lines(r.out)[0]["ids"], json::parse("[49406, 2368, 49407, 49407, 49407, 49407]"));
  EXPECT_EQ(lines(r.out)[0]["attention_mask"], json::parse("[1, 1, 1, 0, 0, 0]"));
  r = run({"--tokenizer", kClip, "--text", "cat", "--pad"});  // pads to model_max_length
  EXPECT_EQ(lines(r.out)[0]["ids"].size(), 77u);
  r = run({"--tokenizer", kClip, "--text", "A photo of a cat.", "--raw"});
  EXPECT_EQ(lines(r.out)[0]["ids"], json::parse("[320, 1125, 539, 320, 2368, 269]"));
  fs::remove(in);
}

TEST(TokenizeCli, TypeOverride) {
  Result r = run({"--tokenizer", kGpt2, "--type", "gpt2", "--text", "hello world"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(lines(r.out)[0]["ids"], json::parse("[31373, 995]"));
  r = run({"--tokenizer", kGpt2, "--type", "bert", "--text", "x"});
  EXPECT_EQ(r.rc, 2);
}

TEST(TokenizeCli, Errors) {
  Result r = run({"--text", "x"});  // no tokenizer
  EXPECT_EQ(r.rc, 2);
  r = run({"--tokenizer", kClip});  // no input
  EXPECT_EQ(r.rc, 2);
  r = run({"--tokenizer", kClip, "--model", kClip, "--text", "x"});
  EXPECT_EQ(r.rc, 2);
  std::string empty_dir = tmp_path("empty");
  fs::create_directories(empty_dir);
  r = run({"--tokenizer", empty_dir, "--text", "x"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("clipkit: error: " + empty_dir), std::string::npos) << r.err;
  fs::remove_all(empty_dir);
  std::string bad = tmp_path("bad.jsonl");
  std::ofstream(bad) << "{\"text\": \"ok\"}\n{\"caption\": \"no text field\"}\n";
  r = run({"--tokenizer", kClip, "--file", bad});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(bad + ":2"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  std::ofstream(bad) << "{\"text\": \"ok\"\n";
  r = run({"--tokenizer", kClip, "--file", bad});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(bad + ":1: malformed JSON"), std::string::npos) << r.err;
  fs::remove(bad);
}

}  // namespace
