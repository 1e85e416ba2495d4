#include "text/bpe.h"

#include <atomic>
#include <cstring>
#include <limits>

#include "text/unicode.h"

namespace clipkit::text {

const std::vector<std::string>& byte_to_unicode() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      utf8_append(t[b], cp);
    }
    return t;
  }();
  return table;
}

int byte_from_unicode(char32_t cp) {
  static const std::vector<int> inv = [] {
    std::vector<int> v(512, -1);
    const auto& t = byte_to_unicode();
    for (int b = 0; b < 256; ++b) {
      std::vector<char32_t> cps;
      utf8_decode(t[b], cps);
      v[cps[0]] = b;
    }
    return v;
  }();
  return cp < inv.size() ? inv[cp] : -1;
}

namespace {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0x94d049bb133111ebull;
  }
  return mix64(h);
}

// Per-thread cache of finished pieces: open addressing over (hash, bytes) -> ids, all stored in
// two flat arenas. Cleared (not grown) past a size cap so memory stays bounded on huge corpora.
class WordCache {
 public:
  const int32_t* find(std::string_view key, uint64_t h, uint32_t& n) const {
    if (slots_.empty()) return nullptr;
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmpty) return nullptr;
      if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
        n = s.val_len;
        return vals_.data() + s.val_off;
      }
    }
  }
  void insert(std::string_view key, uint64_t h, const int32_t* ids, uint32_t n) {
    if (count_ >= kMaxEntries || keys_.size() + key.size() > kMaxKeyBytes) clear();
    if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 1024 : slots_.size() * 2);
    size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    while (slots_[i].key_len != kEmpty) i = (i + 1) & mask;
    slots_[i] = Slot{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size()),
                     static_cast<uint32_t>(vals_.size()), n};
    keys_.append(key);
    vals_.insert(vals_.end(), ids, ids + n);
    ++count_;
  }
  void clear() {
    slots_.clear();
    keys_.clear();
    vals_.clear();
    count_ = 0;
  }

 private:
  static constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();
  static constexpr size_t kMaxEntries = 1 << 20;
  static constexpr size_t kMaxKeyBytes = 64u << 20;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = kEmpty, val_off = 0, val_len = 0;
  };
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    for (const Slot& s : old) {
      if (s.key_len == kEmpty) continue;
      size_t i = s.hash & (cap - 1);
      while (slots_[i].key_len != kEmpty) i = (i + 1) & (cap - 1);
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> vals_;
  size_t count_ = 0;
};

// A few cache slots per thread, keyed by model uid (a process-wide counter, never reused, so a
// destroyed model's cache can never be mistaken for a new one's).
WordCache& thread_cache(uint64_t uid) {
  constexpr int kSlots = 4;
  thread_local uint64_t uids[kSlots] = {0, 0, 0, 0};
  thread_local WordCache caches[kSlots];
  thread_local int next = 0;
  for (int i = 0; i < kSlots; ++i)
    if (uids[i] == uid) return caches[i];
  int i = next;
  next = (next + 1) % kSlots;
  uids[i] = uid;
  caches[i].clear();
  return caches[i];
}

std::atomic<uint64_t> g_next_uid{1};

}  // namespace

// (left symbol, right symbol) -> (rank, merged symbol), open addressing on a 64-bit key.
struct BpeModel::MergeTable {
  struct Entry {
    uint64_t key = ~0ull;
    int32_t rank = 0, result = 0;
  };
  std::vector<Entry> slots;
  uint64_t mask = 0;

  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 16) cap <<= 1;
    slots.assign(cap, Entry{});
    mask = cap - 1;
  }
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  void put(int32_t a, int32_t b, int32_t rank, int32_t result) {
    uint64_t k = key(a, b);
    for (uint64_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == ~0ull || slots[i].key == k) {  // a repeated pair keeps its last rank, as dict() does
        slots[i] = Entry{k, rank, result};
        return;
      }
    }
  }
  const Entry* get(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    for (uint64_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == ~0ull) return nullptr;
    }
  }
};

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, std::string end_of_word,
                   int32_t unk_id)
    : vocab_(std::move(vocab)), end_of_word_(std::move(end_of_word)), unk_id_(unk_id), num_merges_(merges.size()),
      uid_(g_next_uid.fetch_add(1)) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
  vocab_size_ = max_id + 1;
  id_to_token_.assign(static_cast<size_t>(vocab_size_), std::string());
  for (const auto& [tok, id] : vocab_)
    if (id >= 0) id_to_token_[static_cast<size_t>(id)] = tok;
  for (const auto& [tok, id] : vocab_) intern(tok);
  const auto& b2u = byte_to_unicode();
  for (int b = 0; b < 256; ++b) {
    byte_symbol_[b] = intern(b2u[b]);
    byte_eow_symbol_[b] = end_of_word_.empty() ? byte_symbol_[b] : intern(b2u[b] + end_of_word_);
  }
  merges_ = std::make_shared<MergeTable>(merges.size());
  int32_t rank = 0;
  for (const auto& [a, b] : merges) {
    int32_t sa = intern(a), sb = intern(b);
    int32_t r = intern(a + b);
    merges_->put(sa, sb, rank++, r);
  }
}

int32_t BpeModel::intern(const std::string& s) {
  auto [it, inserted] = symbol_index_.try_emplace(s, static_cast<int32_t>(symbol_vocab_id_.size()));
  if (inserted) {
    auto v = vocab_.find(s);
    symbol_vocab_id_.push_back(v == vocab_.end() ? -1 : v->second);
  }
  return it->second;
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= vocab_size_) return empty;
  return id_to_token_[static_cast<size_t>(id)];
}

void BpeModel::encode_piece_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  // Symbols of the piece; words are short, so a small stack buffer avoids allocation.
  constexpr size_t kStack = 64;
  int32_t stack_a[kStack], stack_b[kStack];
  std::vector<int32_t> heap_a, heap_b;
  int32_t* w = stack_a;
  int32_t* tmp = stack_b;
  const size_t n0 = piece.size();
  if (n0 > kStack) {
    heap_a.resize(n0);
    heap_b.resize(n0);
    w = heap_a.data();
    tmp = heap_b.data();
  }
  size_t n = n0;
  for (size_t i = 0; i < n0; ++i) {
    auto b = static_cast<unsigned char>(piece[i]);
    w[i] = i + 1 == n0 ? byte_eow_symbol_[b] : byte_symbol_[b];
  }
  const MergeTable& mt = *merges_;
  while (n > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), first = -1, second = -1, merged = -1;
    for (size_t i = 0; i + 1 < n; ++i) {
      const auto* e = mt.get(w[i], w[i + 1]);
      if (e && e->rank < best_rank) {
        best_rank = e->rank;
        first = w[i];
        second = w[i + 1];
        merged = e->result;
      }
    }
    if (first < 0) break;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
      if (i + 1 < n && w[i] == first && w[i + 1] == second) {
        tmp[m++] = merged;
        i += 2;
      } else {
        tmp[m++] = w[i++];
      }
    }
    std::swap(w, tmp);
    n = m;
  }
  for (size_t i = 0; i < n; ++i) {
    int32_t id = symbol_vocab_id_[static_cast<size_t>(w[i])];
    if (id < 0) id = unk_id_;
    if (id >= 0) out.push_back(id);  // no unk token: the symbol is dropped, as HF's BPE does
  }
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  WordCache& cache = thread_cache(uid_);
  uint64_t h = hash_bytes(piece.data(), piece.size());
  uint32_t n = 0;
  if (const int32_t* ids = cache.find(piece, h, n)) {
    out.insert(out.end(), ids, ids + n);
    return;
  }
  size_t before = out.size();
  encode_piece_uncached(piece, out);
  cache.insert(piece, h, out.data() + before, static_cast<uint32_t>(out.size() - before));
}

}  // namespace clipkit::text
