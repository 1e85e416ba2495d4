#include "text/tokenizer.h"

#include <algorithm>
#include <exception>
#include <mutex>

#include "core/error.h"
#include "core/parallel.h"
#include "text/bpe_tokenizer.h"

namespace clipkit::text {

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_dir(const std::string& dir, const std::string& type) {
  TokenizerSpec spec = load_tokenizer_spec(dir, type);
  if (spec.type == "clip") return make_clip_tokenizer(std::move(spec));
  return make_byte_level_tokenizer(std::move(spec));
}

void Tokenizer::check_options(const EncodeOptions& o, bool wrap) const {
  if (o.max_length < 0) fail("max_length must be >= 0 (got {})", o.max_length);
  if (wrap && o.max_length > 0 && o.max_length < 2)
    fail("max_length {} leaves no room for the 2 special tokens", o.max_length);
  const int pad_to = o.max_length > 0 ? o.max_length : model_max_length();
  if (o.pad_to_max_length && pad_to > kMaxPadLength)
    fail("padding to {} tokens is more than clipkit pads to ({}); give a smaller max_length", pad_to, kMaxPadLength);
}

size_t Tokenizer::reserve_hint(size_t text_bytes, const EncodeOptions& o) const {
  size_t n = text_bytes / 3 + 4;
  if (o.pad_to_max_length) n = std::max(n, static_cast<size_t>(o.max_length > 0 ? o.max_length : model_max_length()));
  return std::min<size_t>(n, 1 << 16);  // a hint only: huge model_max_length values exist
}

Encoding Tokenizer::finish(std::vector<int32_t>&& content, bool wrap, const EncodeOptions& o) const {
  check_options(o, wrap);
  const size_t added = wrap ? 2 : 0;
  if (o.max_length > 0 && content.size() + added > static_cast<size_t>(o.max_length))
    content.resize(static_cast<size_t>(o.max_length) - added);  // keep the start, drop the tail
  Encoding e;
  size_t target = content.size() + added;
  if (o.pad_to_max_length) {
    size_t len = static_cast<size_t>(o.max_length > 0 ? o.max_length : model_max_length());
    if (len > target) target = len;
  }
  e.ids = std::move(content);
  if (wrap) {
    e.ids.reserve(target);
    e.ids.insert(e.ids.begin(), bos_id());  // short vectors: a memmove, no second buffer
    e.ids.push_back(eos_id());
  }
  e.attention_mask.assign(e.ids.size(), 1);
  if (e.ids.size() < target) {
    e.ids.resize(target, pad_id());
    e.attention_mask.resize(target, 0);
  }
  return e;
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts, const EncodeOptions& o) const {
  std::vector<Encoding> out(texts.size());
  const auto n = static_cast<int64_t>(texts.size());
  int nt = num_threads();
  if (n < 64 || nt <= 1) {
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = encode(texts[static_cast<size_t>(i)], o);
    return out;
  }
  std::exception_ptr error;
  std::mutex error_mu;
  // Dynamic chunks: texts differ in length, and a cold cache makes early texts slower.
#pragma omp parallel for schedule(dynamic, 256) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    try {
      out[static_cast<size_t>(i)] = encode(texts[static_cast<size_t>(i)], o);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return out;
}

// ---- BpeTokenizerBase ----

EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}

void index_code_points(EncodeScratch& s) {
  s.text.clear();
  s.classes.resize(s.cps.size());
  s.offsets.resize(s.cps.size() + 1);
  for (size_t i = 0; i < s.cps.size(); ++i) {
    s.offsets[i] = static_cast<uint32_t>(s.text.size());
    utf8_append(s.text, s.cps[i]);
    s.classes[i] = char_class(s.cps[i]);
  }
  s.offsets[s.cps.size()] = static_cast<uint32_t>(s.text.size());
}

namespace {
int32_t resolve(const TokenizerSpec& spec, const std::string& token, const char* what, bool required) {
  if (token.empty()) {
    if (required) fail("{}: no {} token configured", spec.config_source, what);
    return -1;
  }
  auto it = spec.vocab.find(token);
  if (it == spec.vocab.end()) {
    if (required) fail("{}: {} token \"{}\" is not in the vocabulary ({})", spec.config_source, what, token, spec.vocab_source);
    return -1;
  }
  return it->second;
}
}  // namespace

BpeTokenizerBase::BpeTokenizerBase(TokenizerSpec&& spec)
    : added_(spec.added_tokens), type_(spec.type), model_max_length_(spec.model_max_length),
      add_prefix_space_(spec.add_prefix_space), vocab_source_(spec.vocab_source) {
  if (spec.merges.empty()) fail("{}: no merges", spec.vocab_source);
  bos_id_ = resolve(spec, spec.bos, "bos", true);
  eos_id_ = resolve(spec, spec.eos, "eos", true);
  unk_id_ = resolve(spec, spec.unk, "unk", false);
  pad_id_ = spec.pad.empty() ? eos_id_ : resolve(spec, spec.pad, "pad", true);
  model_ = std::make_unique<BpeModel>(std::move(spec.vocab), spec.merges, spec.end_of_word, unk_id_);
}

std::string BpeTokenizerBase::decode(const std::vector<int32_t>& ids) const {
  std::string joined;
  for (int32_t id : ids) {
    if (id == bos_id_ || id == eos_id_ || id == pad_id_) continue;
    bool special = false;
    for (const auto& a : added_) special |= a.special && a.id == id;
    if (special) continue;
    joined += model_->id_to_token(id);
  }
  std::vector<char32_t> cps;
  utf8_decode(joined, cps);
  std::string bytes;
  for (char32_t c : cps) {
    int b = byte_from_unicode(c);
    if (b >= 0) bytes.push_back(static_cast<char>(b));
    else utf8_append(bytes, c);
  }
  const std::string& eow = model_->end_of_word();
  if (!eow.empty()) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
      if (bytes.compare(i, eow.size(), eow) == 0) { out.push_back(' '); i += eow.size(); }
      else out.push_back(bytes[i++]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    size_t b = out.find_first_not_of(' ');
    return b == std::string::npos ? std::string() : out.substr(b);
  }
  return bytes;
}

}  // namespace clipkit::text
