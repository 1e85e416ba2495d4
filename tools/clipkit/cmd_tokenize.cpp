// clipkit tokenize: text -> token ids with a checkpoint's tokenizer, one JSON line per text:
//   {"text": ..., "ids": [...], "attention_mask": [...]}
// Default = HF's tokenizer(text): special tokens, no truncation, no padding.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "io/atomic_file.h"
#include "text/tokenizer.h"

namespace clipkit::cli {
namespace {

struct TokenizeArgs {
  std::string model_dir, tokenizer_dir, type, file, out;
  std::vector<std::string> texts;
  bool raw = false, pad = false;
  int max_length = 0;
  int threads = 0;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// .jsonl: one object per line with a "text" string (blank lines skipped). Anything else: one text
// per line (a trailing "\r" dropped; a final newline does not start an extra text).
std::vector<std::string> read_texts(const std::string& path) {
  const std::string data = read_file(path);
  std::vector<std::string> texts;
  const bool jsonl = ends_with(path, ".jsonl");
  size_t pos = 0, line_no = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!jsonl) {
      texts.push_back(std::move(line));
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    std::string why;
    if (!try_parse_json(line, &j, &why)) fail("{}:{}: malformed JSON: {}", path, line_no, why);
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      fail("{}:{}: expected an object with a \"text\" string", path, line_no);
    texts.push_back(j["text"].get<std::string>());
  }
  return texts;
}

void append_ids(std::string& out, const std::vector<int32_t>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(v[i]);
  }
  out += ']';
}

int run_tokenize(const TokenizeArgs& a) {
  set_num_threads(a.threads);
  const std::string& dir = a.model_dir.empty() ? a.tokenizer_dir : a.model_dir;
  auto tok = text::Tokenizer::from_dir(dir, a.type);
  std::vector<std::string> texts = a.file.empty() ? a.texts : read_texts(a.file);
  text::EncodeOptions o;
  o.add_special_tokens = !a.raw;
  o.max_length = a.max_length;
  o.pad_to_max_length = a.pad;
  std::vector<text::Encoding> enc = tok->encode_batch(texts, o);
  std::string out;
  out.reserve(texts.size() * 128);
  for (size_t i = 0; i < texts.size(); ++i) {
    out += "{\"text\": ";
    out += json_text(nlohmann::json(texts[i]));
    out += ", \"ids\": ";
    append_ids(out, enc[i].ids);
    out += ", \"attention_mask\": ";
    append_ids(out, enc[i].attention_mask);
    out += "}\n";
  }
  if (a.out.empty()) {
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
      fail("cannot write to standard output");
  } else {
    write_file_atomic(a.out, out);
  }
  return kOk;
}

const CommandRegistrar reg("tokenize", "turn text into token ids with a checkpoint's tokenizer (JSON lines)",
                           [](CLI::App& app) -> RunFn {
  auto a = std::make_shared<TokenizeArgs>();
  auto* model = add_model_flag(app, a->model_dir, ModelUse::Optional, "model whose tokenizer files to use (folder, hub id or cache folder)");
  auto* tokdir = app.add_option("--tokenizer", a->tokenizer_dir,
                                "tokenizer folder: tokenizer.json, or vocab.json + merges.txt")
                     ->check(CLI::ExistingDirectory);
  require_one_of(app, {model, tokdir});
  auto* text = app.add_option("--text", a->texts, "a text (repeatable)")->allow_extra_args(false)->default_str("");
  auto* file = app.add_option("--texts", a->file, "F.txt (one text per line) or F.jsonl (a \"text\" field per line)")
                   ->check(CLI::ExistingFile);
  auto* file_alias = app.add_option("--file", a->file)->check(CLI::ExistingFile)->group("");  // the old spelling
  require_one_of(app, {text, file, file_alias});
  app.add_option("--type", a->type, "tokenizer type: clip, gpt2 or roberta (\"\" = inferred from the files)")
      ->check(CLI::IsMember({"clip", "gpt2", "roberta"}));
  app.add_flag("--raw", a->raw, "bare BPE ids: no start/end tokens");
  add_int_flag(app, "--max-length", a->max_length, "truncate to N ids, the end token kept (0 = no truncation)", 0);
  app.add_flag("--pad", a->pad, "pad to --max-length (default: the model's max length) with the pad token");
  app.add_option("--out", a->out, "write the JSON lines here instead of standard output");
  add_threads_flag(app, a->threads);
  return [a] { return run_tokenize(*a); };
});

}  // namespace
}  // namespace clipkit::cli
