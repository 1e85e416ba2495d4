#include "text/tokenizer_files.h"

#include <climits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json.h"

namespace clipkit::text {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_whole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("{}: read error", path);
  return ss.str();
}

json parse_json_text(const std::string& text, const std::string& path) {
  json j;
  std::string why;
  if (!try_parse_json(text, &j, &why)) fail("{}: malformed JSON: {}", path, why);
  return j;
}

json parse_json_file(const std::string& path) { return parse_json_text(read_whole(path), path); }

// A token id: an integer in 0..kMaxTokenId. `what` names the entry for the error.
int32_t token_id(const json& v, const std::string& path, const std::string& what) {
  if (!v.is_number_integer()) fail("{}: the id of {} is not an integer", path, what);
  const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(kMaxTokenId)
                                               : v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxTokenId;
  if (!in_range) fail("{}: the id of {} is {}, outside the token id range 0..{}", path, what, json_text(v), kMaxTokenId);
  return static_cast<int32_t>(v.get<int64_t>());
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

json read_optional_object(const std::string& path) {
  if (!fs::exists(path)) return json::object();
  json j = parse_json_file(path);
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  return j;
}

// A special token entry: "text" or {"content": "text", "lstrip": ..., ...}; nullptr/absent -> "".
bool token_field(const json& cfg, const char* key, const std::string& path, std::string& out, AddedToken* props = nullptr) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return false;
  if (it->is_string()) {
    out = it->get<std::string>();
  } else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
    if (props) {
      props->lstrip = it->value("lstrip", false);
      props->rstrip = it->value("rstrip", false);
    }
  } else {
    fail("{}: \"{}\" must be a string or an object with \"content\"", path, key);
  }
  return true;
}

std::string infer_type_from_vocab(const std::unordered_map<std::string, int32_t>& vocab) {
  if (vocab.count("<|startoftext|>") || vocab.count("a</w>")) return "clip";
  if (vocab.count("<s>") && vocab.count("</s>")) return "roberta";
  return "gpt2";
}

std::string type_from_class(const std::string& cls) {
  if (cls.rfind("CLIPTokenizer", 0) == 0) return "clip";
  if (cls.rfind("RobertaTokenizer", 0) == 0) return "roberta";
  if (cls.rfind("GPT2Tokenizer", 0) == 0) return "gpt2";
  return "";
}

void add_or_update_added(std::vector<AddedToken>& v, const AddedToken& t) {
  for (auto& a : v)
    if (a.content == t.content) { a = t; return; }
  v.push_back(t);
}

// tokenizer.json (HF tokenizers' serialization): model, added_tokens, pre_tokenizer, post_processor.
void load_tokenizer_json(const std::string& path, TokenizerSpec& spec, std::string& inferred) {
  json j = parse_json_file(path);
  if (!j.is_object()) fail("{}: expected a JSON object", path);
  auto mit = j.find("model");
  if (mit == j.end() || !mit->is_object()) fail("{}: missing \"model\" object", path);
  const json& model = *mit;
  std::string mtype = model.value("type", std::string("BPE"));
  if (mtype != "BPE") fail("{}: model type \"{}\" is not supported (only byte-level BPE)", path, mtype);
  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) fail("{}: model.vocab must be an object", path);
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    spec.vocab[it.key()] = token_id(it.value(), path, "model.vocab[" + in_quotes(it.key()) + "]");
  }
  auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) fail("{}: model.merges must be an array", path);
  spec.merges.reserve(merges->size());
  size_t k = 0;
  for (const json& m : *merges) {
    if (m.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
        fail("{}: model.merges[{}] \"{}\" is not two tokens separated by one space", path, k, s);
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail("{}: model.merges[{}] must be \"a b\" or [\"a\", \"b\"]", path, k);
    }
    ++k;
  }
  if (model.contains("end_of_word_suffix") && model["end_of_word_suffix"].is_string())
    spec.end_of_word = model["end_of_word_suffix"].get<std::string>();
  if (model.contains("unk_token") && model["unk_token"].is_string()) spec.unk = model["unk_token"].get<std::string>();

  if (auto at = j.find("added_tokens"); at != j.end() && at->is_array()) {
    for (const json& t : *at) {
      if (!t.is_object() || !t.contains("content") || !t.contains("id") || !t["content"].is_string() ||
          !t["id"].is_number_integer())
        fail("{}: added_tokens entries need \"id\" and \"content\"", path);
      AddedToken a;
      a.content = t["content"].get<std::string>();
      a.id = token_id(t["id"], path, "added token " + in_quotes(a.content));
      a.special = t.value("special", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      spec.vocab.emplace(a.content, a.id);
      add_or_update_added(spec.added_tokens, a);
    }
  }
  // The structure tells the type: CLIP lowercases and marks word ends; RoBERTa's post-processor
  // wraps in <s> </s>; otherwise plain GPT-2 byte-level.
  std::string dumped_norm = j.contains("normalizer") ? json_text(j["normalizer"]) : "";
  auto find_byte_level = [&](const json& pt, auto&& self) -> void {
    if (!pt.is_object()) return;
    if (pt.value("type", std::string()) == "ByteLevel") spec.add_prefix_space = pt.value("add_prefix_space", false);
    if (pt.contains("pretokenizers") && pt["pretokenizers"].is_array())
      for (const json& p : pt["pretokenizers"]) self(p, self);
  };
  if (j.contains("pre_tokenizer")) find_byte_level(j["pre_tokenizer"], find_byte_level);
  std::string post_type;
  if (j.contains("post_processor") && j["post_processor"].is_object()) {
    const json& pp = j["post_processor"];
    post_type = pp.value("type", std::string());
    if (post_type == "RobertaProcessing" || post_type == "BertProcessing") {
      if (pp.contains("cls") && pp["cls"].is_array() && !pp["cls"].empty() && pp["cls"][0].is_string())
        spec.bos = pp["cls"][0].get<std::string>();
      if (pp.contains("sep") && pp["sep"].is_array() && !pp["sep"].empty() && pp["sep"][0].is_string())
        spec.eos = pp["sep"][0].get<std::string>();
    }
  }
  if (spec.end_of_word == "</w>" || dumped_norm.find("Lowercase") != std::string::npos)
    inferred = "clip";
  else if (post_type == "RobertaProcessing")
    inferred = "roberta";
  else
    inferred = infer_type_from_vocab(spec.vocab);
  spec.vocab_source = path;
}

}  // namespace

std::unordered_map<std::string, int32_t> parse_vocab_json(const std::string& text, const std::string& path) {
  json j = parse_json_text(text, path);
  if (!j.is_object()) fail("{}: expected a JSON object mapping tokens to ids", path);
  if (j.empty()) fail("{}: the vocabulary is empty", path);
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    vocab[it.key()] = token_id(it.value(), path, in_quotes(it.key()));
  }
  return vocab;
}

std::vector<std::pair<std::string, std::string>> parse_merges_txt(const std::string& text, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string_view::npos)
      fail("{}:{}: expected two tokens separated by one space, got \"{}\"", path, line_no, line);
    merges.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  return merges;
}

namespace {

TokenizerSpec read_tokenizer_spec(const std::string& dir, const std::string& type) {
  if (!type.empty() && type != "clip" && type != "gpt2" && type != "roberta")
    fail("unknown tokenizer type \"{}\" (expected clip, gpt2 or roberta)", type);
  if (!fs::is_directory(dir)) fail("{}: not a directory", dir);
  const fs::path d(dir);
  const std::string tok_json = (d / "tokenizer.json").string();
  const std::string vocab_path = (d / "vocab.json").string();
  const std::string merges_path = (d / "merges.txt").string();
  const std::string config_path = (d / "tokenizer_config.json").string();
  const std::string map_path = (d / "special_tokens_map.json").string();
  const std::string added_path = (d / "added_tokens.json").string();

  TokenizerSpec spec;
  std::string inferred;
  if (fs::exists(tok_json)) {
    load_tokenizer_json(tok_json, spec, inferred);
  } else if (fs::exists(vocab_path) || fs::exists(merges_path)) {
    if (!fs::exists(vocab_path)) fail("{}: missing (merges.txt needs vocab.json beside it)", vocab_path);
    if (!fs::exists(merges_path)) fail("{}: missing (vocab.json needs merges.txt beside it)", merges_path);
    spec.vocab = parse_vocab_json(read_whole(vocab_path), vocab_path);
    spec.merges = parse_merges_txt(read_whole(merges_path), merges_path);
    spec.vocab_source = vocab_path;
    inferred = infer_type_from_vocab(spec.vocab);
    // added_tokens.json (old slow layout): {"token": id}
    json added = read_optional_object(added_path);
    for (auto it = added.begin(); it != added.end(); ++it) {
      AddedToken a;
      a.content = it.key();
      a.id = token_id(it.value(), added_path, in_quotes(it.key()));
      spec.vocab.emplace(a.content, a.id);
      add_or_update_added(spec.added_tokens, a);
    }
  } else {
    fail("{}: no tokenizer files (expected tokenizer.json, or vocab.json + merges.txt)", dir);
  }

  json cfg = read_optional_object(config_path);
  json map = read_optional_object(map_path);
  if (type.empty()) {
    std::string from_class = type_from_class(cfg.value("tokenizer_class", std::string()));
    spec.type = from_class.empty() ? inferred : from_class;
  } else {
    spec.type = type;
  }
  if (spec.type == "clip" && spec.end_of_word.empty()) spec.end_of_word = "</w>";

  // Defaults per type, then tokenizer_config.json, then special_tokens_map.json (HF lets the map win).
  if (spec.type == "clip") {
    spec.bos = "<|startoftext|>";
    spec.eos = spec.unk = spec.pad = "<|endoftext|>";
    spec.model_max_length = 77;
  } else if (spec.type == "roberta") {
    if (spec.bos.empty()) spec.bos = "<s>";
    if (spec.eos.empty()) spec.eos = "</s>";
    spec.unk = "<unk>";
    spec.pad = "<pad>";
    spec.model_max_length = 512;
  } else {
    spec.bos = spec.eos = "<|endoftext|>";
    if (spec.unk.empty()) spec.unk = "<|endoftext|>";
    spec.pad.clear();  // GPT-2 has no pad token; pad_id() falls back to eos
    spec.model_max_length = 1024;
  }
  spec.config_source = config_path;
  AddedToken mask_props;
  std::string mask;
  if (spec.type == "roberta") {
    mask = "<mask>";
    mask_props.lstrip = true;  // RoBERTa's <mask> swallows the space before it
  }
  for (const auto& [c, p] : {std::pair<const json*, const std::string*>{&cfg, &config_path}, {&map, &map_path}}) {
    token_field(*c, "bos_token", *p, spec.bos);
    token_field(*c, "eos_token", *p, spec.eos);
    token_field(*c, "unk_token", *p, spec.unk);
    if (token_field(*c, "pad_token", *p, spec.pad) && c == &map) spec.config_source = map_path;
    token_field(*c, "mask_token", *p, mask, &mask_props);
  }
  if (cfg.contains("model_max_length") && cfg["model_max_length"].is_number()) {
    double m = cfg["model_max_length"].get<double>();
    if (!(m >= 1)) fail("{}: model_max_length must be positive", config_path);
    // HF writes int(1e30) for "no limit"; anything beyond int is taken as that
    spec.model_max_length = m > INT_MAX ? 0 : static_cast<int>(m);
  }
  if (cfg.contains("add_prefix_space") && cfg["add_prefix_space"].is_boolean())
    spec.add_prefix_space = cfg["add_prefix_space"].get<bool>();
  // added_tokens_decoder (newer tokenizer_config.json): id -> {content, lstrip, rstrip, special}
  if (auto atd = cfg.find("added_tokens_decoder"); atd != cfg.end() && atd->is_object()) {
    for (auto it = atd->begin(); it != atd->end(); ++it) {
      const json& t = it.value();
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string())
        fail("{}: added_tokens_decoder[\"{}\"] needs \"content\"", config_path, it.key());
      AddedToken a;
      json key_id;
      if (!try_parse_json(it.key(), &key_id) || !key_id.is_number_integer())
        fail("{}: added_tokens_decoder key \"{}\" is not an id", config_path, it.key());
      a.id = token_id(key_id, config_path, "added_tokens_decoder[" + in_quotes(it.key()) + "]");
      a.content = t["content"].get<std::string>();
      a.special = t.value("special", true);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      spec.vocab.emplace(a.content, a.id);
      add_or_update_added(spec.added_tokens, a);
    }
  }
  // The special tokens themselves are matched in the text too (byte-level tokenizers).
  for (const std::string* s : {&spec.bos, &spec.eos, &spec.unk, &spec.pad, &mask}) {
    if (s->empty() || !spec.vocab.count(*s)) continue;
    bool known = false;
    for (auto& a : spec.added_tokens) known |= a.content == *s;
    if (known) continue;
    AddedToken a;
    a.content = *s;
    a.id = spec.vocab.at(*s);
    if (s == &mask) { a.lstrip = mask_props.lstrip; a.rstrip = mask_props.rstrip; }
    spec.added_tokens.push_back(a);
  }
  return spec;
}

}  // namespace

// Fields of the wrong JSON type (a string where a bool is read, ...) become an Error naming the
// folder, like every other problem of these files.
TokenizerSpec load_tokenizer_spec(const std::string& dir, const std::string& type) {
  try {
    return read_tokenizer_spec(dir, type);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: tokenizer files: {}", dir, e.what());
  }
}

}  // namespace clipkit::text
