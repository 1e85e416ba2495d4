// Tokenizer files (text/tokenizer_files.h): tokenizer.json, or vocab.json + merges.txt with
// tokenizer_config.json. The first byte picks which file the input is (the others are a small
// valid vocabulary); a tokenizer that loads encodes a few texts, padded and truncated.
#include <filesystem>

#include "core/error.h"
#include "fuzz_util.h"
#include "text/tokenizer.h"
#include "text/tokenizer_files.h"

namespace {

const char* kVocab = R"({"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<|endoftext|>": 5, "<|startoftext|>": 6,
                        "a</w>": 7, "\u0120": 8, "<s>": 9, "</s>": 10, "<pad>": 11, "<unk>": 12})";
const char* kMerges = "#version: 0.2\na b\nab c\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  namespace fs = std::filesystem;
  const std::string dir = clipkit::fuzz::scratch_dir() + "/tok";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string_view body = clipkit::fuzz::as_view(data + 1, size - 1);
  auto put = [&](const char* name, std::string_view s) {
    std::ofstream(dir + "/" + name, std::ios::binary).write(s.data(), static_cast<std::streamsize>(s.size()));
  };
  switch (data[0] % 4) {
    case 0: put("tokenizer.json", body); break;
    case 1: put("vocab.json", body); put("merges.txt", kMerges); break;
    case 2: put("vocab.json", kVocab); put("merges.txt", body); break;
    default: put("vocab.json", kVocab); put("merges.txt", kMerges); put("tokenizer_config.json", body); break;
  }
  try {
    auto tok = clipkit::text::Tokenizer::from_dir(dir);
    clipkit::text::EncodeOptions o;
    for (const char* t : {"abc ab a", "<|endoftext|> a\xff b", "", "caf\xc3\xa9 \xf0\x9f\x98\x80 <s> <mask>"}) {
      tok->encode(t);
      o.pad_to_max_length = true;
      o.max_length = 8;
      tok->encode(t, o);
      o = {};
    }
  } catch (const clipkit::Error&) {
  }
  return 0;
}
