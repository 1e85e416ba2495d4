#include "pipeline/processor_files.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"

#ifndef CLIPKIT_ASSETS_DIR
#define CLIPKIT_ASSETS_DIR "assets"
#endif

namespace clipkit::pipeline {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string assets_dir() {
  const char* env = std::getenv("CLIPKIT_ASSETS");
  if (env && *env) return env;
  std::error_code ec;
  if (fs::is_directory(CLIPKIT_ASSETS_DIR, ec)) return CLIPKIT_ASSETS_DIR;  // the source tree (a build)
  // An installed binary: PREFIX/bin/clipkit next to PREFIX/share/clipkit/assets.
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path installed = exe.parent_path().parent_path() / "share/clipkit/assets";
  if (!ec && fs::is_directory(installed, ec)) return installed.string();
  fail("the bundled tokenizer files are missing: neither {} nor {} exists (set CLIPKIT_ASSETS to the assets folder)",
       CLIPKIT_ASSETS_DIR, installed.string());
}

void write_clip_preprocessor_config(const std::string& dir, int s) {
  json j = {{"crop_size", {{"height", s}, {"width", s}}},
            {"do_center_crop", true},
            {"do_convert_rgb", true},
            {"do_normalize", true},
            {"do_rescale", true},
            {"do_resize", true},
            {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
            {"image_processor_type", "CLIPImageProcessor"},
            {"image_std", {0.26862954, 0.26130258, 0.27577711}},
            {"resample", 3},
            {"rescale_factor", 0.00392156862745098},
            {"size", {{"shortest_edge", s}}}};
  write_file_atomic((fs::path(dir) / "preprocessor_config.json").string(), json_text(j, 2) + "\n");
}

static void copy_atomic(const fs::path& from, const fs::path& to) { write_file_atomic(to.string(), read_file(from.string())); }

void write_clip_tokenizer_files(const std::string& dir, const std::string& vocab_dir, int max_len) {
  for (const char* f : {"vocab.json", "merges.txt"}) {
    fs::path src = fs::path(vocab_dir) / f;
    if (!fs::exists(src)) fail("{}: missing (the CLIP vocabulary is needed to write a tokenizer)", src.string());
    copy_atomic(src, fs::path(dir) / f);
  }
  auto tok = [](const char* s) {
    return json{{"__type", "AddedToken"}, {"content", s}, {"lstrip", false}, {"normalized", true},
                {"rstrip", false}, {"single_word", false}};
  };
  json cfg = {{"add_prefix_space", false}, {"bos_token", tok("<|startoftext|>")}, {"do_lower_case", true},
              {"eos_token", tok("<|endoftext|>")}, {"errors", "replace"}, {"model_max_length", max_len},
              {"pad_token", "<|endoftext|>"}, {"tokenizer_class", "CLIPTokenizer"}, {"unk_token", tok("<|endoftext|>")}};
  write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), json_text(cfg, 2) + "\n");
  json sp = {{"bos_token", "<|startoftext|>"}, {"eos_token", "<|endoftext|>"}, {"pad_token", "<|endoftext|>"},
             {"unk_token", "<|endoftext|>"}};
  write_file_atomic((fs::path(dir) / "special_tokens_map.json").string(), json_text(sp, 2) + "\n");
}

void write_roberta_tokenizer_files(const std::string& dir, const std::string& gpt2_dir, int max_len) {
  fs::path vp = fs::path(gpt2_dir) / "vocab.json", mp = fs::path(gpt2_dir) / "merges.txt";
  json gpt2 = parse_json(read_file(vp.string()), vp.string());
  json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  int64_t top = 3;
  for (auto& [tok, id] : gpt2.items()) {
    if (tok == "<|endoftext|>") continue;
    const int64_t shifted =
        json_integer(id, 0, INT32_MAX - 8, fmt::format("{}: id of {}", vp.string(), json_text(json(tok)))) + 4;
    vocab[tok] = shifted;
    top = std::max(top, shifted);
  }
  vocab["<mask>"] = top + 1;
  write_file_atomic((fs::path(dir) / "vocab.json").string(), json_text(vocab));
  write_file_atomic((fs::path(dir) / "merges.txt").string(), read_file(mp.string()));
  json cfg = {{"add_prefix_space", false}, {"bos_token", "<s>"}, {"cls_token", "<s>"}, {"eos_token", "</s>"},
              {"errors", "replace"}, {"mask_token", "<mask>"}, {"model_max_length", max_len}, {"pad_token", "<pad>"},
              {"sep_token", "</s>"}, {"tokenizer_class", "RobertaTokenizer"}, {"trim_offsets", true}, {"unk_token", "<unk>"}};
  write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), json_text(cfg, 2) + "\n");
  json sp = {{"bos_token", "<s>"}, {"cls_token", "<s>"}, {"eos_token", "</s>"}, {"mask_token", "<mask>"},
             {"pad_token", "<pad>"}, {"sep_token", "</s>"}, {"unk_token", "<unk>"}};
  write_file_atomic((fs::path(dir) / "special_tokens_map.json").string(), json_text(sp, 2) + "\n");
}

void copy_tokenizer_files(const std::string& src, const std::string& dst) {
  int n = 0;
  for (const char* f : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "added_tokens.json"}) {
    fs::path p = fs::path(src) / f;
    if (fs::exists(p)) {
      copy_atomic(p, fs::path(dst) / f);
      ++n;
    }
  }
  if (n == 0) fail("{}: no tokenizer files (vocab.json/merges.txt or tokenizer.json) to copy", src);
}

}  // namespace clipkit::pipeline
