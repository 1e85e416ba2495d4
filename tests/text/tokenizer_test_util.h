// Helpers for the tokenizer tests: reference cases, scratch folders built from the shipped vocab.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clipkit::text::testing {

namespace fs = std::filesystem;

inline std::string data_path(const std::string& rel) { return std::string(CLIPKIT_TEST_DATA) + "/" + rel; }

struct RefCase {
  std::string text;
  std::vector<int32_t> ids;
  int line = 0;
};

inline std::vector<RefCase> load_reference(const std::string& rel) {
  std::ifstream f(data_path(rel));
  EXPECT_TRUE(f.good()) << rel;
  std::vector<RefCase> cases;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>(), n});
  }
  return cases;
}

inline std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// A fresh folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "clipkit-tok-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(file(name), std::ios::binary) << content;
  }
  void copy_from(const std::string& src_rel, const std::string& name) const {
    fs::copy_file(data_path(src_rel), file(name), fs::copy_options::overwrite_existing);
  }

 private:
  std::string path_;
};

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// merges.txt lines (without the #version header) as pairs.
inline std::vector<std::pair<std::string, std::string>> read_merges(const std::string& rel) {
  std::ifstream f(data_path(rel));
  std::vector<std::pair<std::string, std::string>> m;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    auto sp = line.find(' ');
    m.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return m;
}

// A RoBERTa-layout folder (as tiny-clip-roberta ships): <s>=0 <pad>=1 </s>=2 <unk>=3, GPT-2 ids + 4,
// <mask>=50261, GPT-2 merges, the checkpoint's tokenizer_config.json / special_tokens_map.json.
inline void make_roberta_dir(const TempDir& d) {
  auto gpt2 = nlohmann::json::parse(read_all(data_path("tokenizers/gpt2/vocab.json")));
  nlohmann::json v = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  for (auto it = gpt2.begin(); it != gpt2.end(); ++it)
    if (it.key() != "<|endoftext|>") v[it.key()] = it.value().get<int>() + 4;
  v["<mask>"] = 50261;
  d.write("vocab.json", v.dump());
  d.copy_from("tokenizers/gpt2/merges.txt", "merges.txt");
  d.copy_from("tokenizers/roberta-config/tokenizer_config.json", "tokenizer_config.json");
  d.copy_from("tokenizers/roberta-config/special_tokens_map.json", "special_tokens_map.json");
}

}  // namespace clipkit::text::testing
