#include "io/tar_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit::io {

namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxHeaderData = 1 << 20;  // pax / long-name records

// Octal (space/NUL padded) or GNU base-256 numeric field. False when malformed.
bool parse_number(const char* f, size_t n, uint64_t* out) {
  const auto* u = reinterpret_cast<const unsigned char*>(f);
  if (u[0] & 0x80) {  // base-256, big-endian; negative values (0xff lead) are invalid here
    if (u[0] == 0xff) return false;
    uint64_t v = u[0] & 0x7f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return false;
      v = (v << 8) | u[i];
    }
    *out = v;
    return true;
  }
  size_t i = 0;
  while (i < n && f[i] == ' ') ++i;
  uint64_t v = 0;
  bool any = false;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + static_cast<uint64_t>(f[i] - '0');
    any = true;
  }
  for (; i < n; ++i)
    if (f[i] != ' ' && f[i] != '\0') return false;
  *out = any ? v : 0;
  return true;
}

bool all_zero(const char* b) {
  for (size_t i = 0; i < kBlock; ++i)
    if (b[i]) return false;
  return true;
}

bool checksum_ok(const char* b) {
  uint64_t want;
  if (!parse_number(b + 148, 8, &want)) return false;
  uint64_t us = 0;
  int64_t ss = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= 148 && i < 156;
    us += in_field ? 0x20u : static_cast<unsigned char>(b[i]);
    ss += in_field ? 0x20 : static_cast<signed char>(b[i]);
  }
  return want == us || static_cast<int64_t>(want) == ss;
}

std::string field(const char* f, size_t n) { return std::string(f, strnlen(f, n)); }

// pax records "LEN key=value\n"; returns false when malformed.
bool parse_pax(const std::string& d, std::string* path, uint64_t* size, bool* has_size) {
  size_t p = 0;
  while (p < d.size()) {
    size_t sp = d.find(' ', p);
    if (sp == std::string::npos) return false;
    uint64_t len = 0;
    for (size_t i = p; i < sp; ++i) {
      if (d[i] < '0' || d[i] > '9' || len > d.size()) return false;
      len = len * 10 + static_cast<uint64_t>(d[i] - '0');
    }
    if (len <= sp - p + 1 || p + len > d.size() || d[p + len - 1] != '\n') return false;
    std::string_view rec(d.data() + sp + 1, p + len - 1 - (sp + 1));
    size_t eq = rec.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view k = rec.substr(0, eq), v = rec.substr(eq + 1);
    if (k == "path") {
      *path = std::string(v);
    } else if (k == "size") {
      uint64_t s = 0;
      if (v.empty() || v.size() > 19) return false;
      for (char c : v) {
        if (c < '0' || c > '9') return false;
        s = s * 10 + static_cast<uint64_t>(c - '0');
      }
      *size = s;
      *has_size = true;
    }
    p += len;
  }
  return true;
}

void put_octal(char* f, size_t n, uint64_t v) {
  // n-1 digits + NUL
  for (size_t i = n - 1; i-- > 0;) {
    f[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  f[n - 1] = '\0';
}

}  // namespace

// ---- sources ----

size_t MemorySource::read(void* buf, size_t n) {
  n = std::min(n, b_.size() - pos_);
  std::memcpy(buf, b_.data() + pos_, n);
  pos_ += n;
  return n;
}

uint64_t MemorySource::skip(uint64_t n) {
  n = std::min<uint64_t>(n, b_.size() - pos_);
  pos_ += n;
  return n;
}

FileSource::FileSource(const std::string& path) : path_(path), buf_(1 << 20) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail("{}: is a folder, not a tar file", path);
  }
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

bool FileSource::refill() {
  lo_ = hi_ = 0;
  while (true) {
    ssize_t r = ::read(fd_, buf_.data(), buf_.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("{}: read error: {}", path_, std::strerror(errno));
    hi_ = static_cast<size_t>(r);
    return r > 0;
  }
}

size_t FileSource::read(void* buf, size_t n) {
  auto* o = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    if (lo_ == hi_ && !refill()) break;
    size_t k = std::min(n - got, hi_ - lo_);
    std::memcpy(o + got, buf_.data() + lo_, k);
    lo_ += k;
    got += k;
  }
  return got;
}

uint64_t FileSource::skip(uint64_t n) {
  uint64_t from_buf = std::min<uint64_t>(n, hi_ - lo_);
  lo_ += from_buf;
  uint64_t rest = n - from_buf;
  if (rest == 0) return n;
  const off_t cur = ::lseek(fd_, 0, SEEK_CUR);
  struct stat st {};
  if (cur >= 0 && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
    const uint64_t avail = st.st_size > cur ? static_cast<uint64_t>(st.st_size - cur) : 0;
    const uint64_t k = std::min(rest, avail);
    ::lseek(fd_, static_cast<off_t>(k), SEEK_CUR);
    return from_buf + k;
  }
  uint64_t skipped = from_buf;  // not seekable: read through
  while (rest > 0) {
    if (!refill()) break;
    uint64_t k = std::min<uint64_t>(rest, hi_);
    lo_ = static_cast<size_t>(k);
    rest -= k;
    skipped += k;
  }
  return skipped;
}

// ---- reader ----

void TarReader::problem(std::string kind, uint64_t off, std::string what) {
  problems_.push_back({std::move(kind), off, std::move(what)});
}

bool TarReader::read_block(char* b) {
  const uint64_t at = pos_;
  size_t got = src_.read(b, kBlock);
  pos_ += got;
  if (got == kBlock) return true;
  if (got > 0) {
    truncated_ = true;
    problem("truncated", at, fmt::format("the archive ends inside a header block at byte {}", at));
  }
  return false;
}

bool TarReader::skip_bytes(uint64_t n) {
  uint64_t k = src_.skip(n);
  pos_ += k;
  return k == n;
}

bool TarReader::read_bytes(uint64_t n, std::string* out) {
  out->clear();
  while (out->size() < n) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(n - out->size(), 1 << 20));
    const size_t old = out->size();
    out->resize(old + want);
    size_t got = src_.read(out->data() + old, want);
    pos_ += got;
    if (got < want) {
      out->resize(old + got);
      return false;
    }
  }
  return true;
}

bool TarReader::next(TarMember* m) {
  if (done_) return false;
  // the rest of the previous member
  if (data_left_ + pad_left_ > 0) {
    const uint64_t want = data_left_ + pad_left_, got = src_.skip(want);
    pos_ += got;
    if (got < data_left_) {
      truncated_ = true;
      problem("truncated", pos_, fmt::format("the archive ends inside member \"{}\"", cur_name_));
    }
    data_left_ = pad_left_ = 0;
    if (got < want) return done_ = true, false;
  }
  std::string long_name, pax_path;
  uint64_t pax_size = 0;
  bool has_pax_size = false;
  char b[kBlock];
  while (true) {
    const uint64_t at = pos_;
    if (!read_block(b)) {
      if (resyncing_ && !truncated_)
        problems_.back().what += fmt::format("; no valid header followed (archive ends at byte {})", pos_);
      return done_ = true, false;
    }
    if (all_zero(b)) {
      if (resyncing_) continue;  // zero padding inside a damaged region
      return done_ = true, false;  // end-of-archive marker
    }
    if (!checksum_ok(b)) {
      if (!resyncing_) {
        resyncing_ = true;
        resync_from_ = at;
        problem("corrupt_header", at, fmt::format("bad header checksum at byte {} (after \"{}\")", at, cur_name_));
      }
      continue;
    }
    if (resyncing_) {
      resyncing_ = false;
      problems_.back().what += fmt::format("; skipped {} bytes to the next valid header", at - resync_from_);
    }
    uint64_t size = 0;
    if (!parse_number(b + 124, 12, &size)) {
      resyncing_ = true;
      resync_from_ = at;
      problem("corrupt_header", at, fmt::format("bad size field in the header at byte {}", at));
      continue;
    }
    const char type = b[156];
    const bool posix = std::memcmp(b + 257, "ustar\0", 6) == 0;
    std::string name = field(b, 100);
    if (posix && b[345]) name = field(b + 345, 155) + "/" + name;
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      if (size > kMaxHeaderData) {
        problem("oversized_header", at, fmt::format("a {} B extended header at byte {} (over 1 MiB)", size, at));
        if (!skip_bytes(padded)) {
          truncated_ = true;
          problem("truncated", pos_, "the archive ends inside an extended header");
          return done_ = true, false;
        }
        continue;
      }
      std::string d;
      const bool ok = read_bytes(size, &d) && skip_bytes(padded - size);
      if (!ok) {
        truncated_ = true;
        problem("truncated", pos_, fmt::format("the archive ends inside an extended header at byte {}", at));
        return done_ = true, false;
      }
      if (type == 'L') {
        long_name = d.substr(0, strnlen(d.data(), d.size()));
      } else if (type == 'x' || type == 'g') {
        std::string p;
        uint64_t s = 0;
        bool hs = false;
        if (!parse_pax(d, &p, &s, &hs)) {
          problem("corrupt_header", at, fmt::format("malformed pax header at byte {}", at));
          continue;
        }
        if (type == 'x') {  // 'g' (global) records set defaults clipkit does not use
          if (!p.empty()) pax_path = p;
          if (hs) pax_size = s, has_pax_size = true;
        }
      }
      continue;  // 'K' (long link name) only matters for links, which are passed over
    }
    if (has_pax_size) size = pax_size;
    const uint64_t data_padded = (size + kBlock - 1) / kBlock * kBlock;
    std::string full = !long_name.empty() ? long_name : !pax_path.empty() ? pax_path : name;
    const bool regular = type == '0' || type == '\0' || type == '7';
    if (!regular || full.ends_with("/")) {
      if (type != '5' && !(regular && full.ends_with("/")))
        problem("unsupported_entry", at,
                fmt::format("\"{}\": entry type '{}' (not a regular file) passed over", full,
                            type >= 32 && type < 127 ? std::string(1, type) : fmt::format("\\x{:02x}", type)));
      if (!skip_bytes(data_padded)) {
        truncated_ = true;
        problem("truncated", pos_, fmt::format("the archive ends inside entry \"{}\"", full));
        return done_ = true, false;
      }
      long_name.clear(), pax_path.clear(), has_pax_size = false;
      continue;
    }
    cur_name_ = full;
    m->name = std::move(full);
    m->size = size;
    m->header_offset = at;
    m->data_offset = pos_;
    data_left_ = size;
    pad_left_ = data_padded - size;
    return true;
  }
}

bool TarReader::read_data(std::string* out) {
  const uint64_t n = data_left_;
  const bool ok = read_bytes(n, out);
  data_left_ = 0;
  if (!ok) {
    truncated_ = true;
    pad_left_ = 0;
    done_ = true;
    problem("truncated", pos_,
            fmt::format("the archive ends inside member \"{}\" ({} of {} bytes)", cur_name_, out->size(), n));
  }
  return ok;
}

std::vector<TarProblem> parse_tar(std::string_view bytes,
                                  const std::function<void(const TarMember&, std::string_view)>& fn) {
  MemorySource src(bytes);
  TarReader r(src);
  TarMember m;
  std::string data;
  while (r.next(&m))
    if (r.read_data(&data)) fn(m, data);
  return r.problems();
}

std::string read_member_at(const std::string& archive, uint64_t offset, uint64_t size) {
  int fd = ::open(archive.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", archive, std::strerror(errno));
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t r = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      fail("{}: cannot read {} bytes at offset {} (the archive is shorter or unreadable)", archive, size, offset);
    }
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return out;
}

bool split_archive_path(const std::string& path, std::string* archive, std::string* member) {
  size_t p = 0;
  while ((p = path.find(".tar/", p)) != std::string::npos) {
    const std::string a = path.substr(0, p + 4);
    struct stat st {};
    if (::stat(a.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      *archive = a;
      *member = path.substr(p + 5);
      return !member->empty();
    }
    p += 5;
  }
  return false;
}

namespace {

// Where each member of an archive is (the first of a name wins, as the stream readers keep it), so
// that reading many members by path scans an archive once. The last few archives are kept, keyed
// by path, size and modification time.
struct MemberTable {
  std::map<std::string, TarMember> members;
  off_t bytes = 0;  // the archive's size (a truncated member ends past it)
  int64_t mtime_ns = 0;
};

std::shared_ptr<const MemberTable> member_table(const std::string& archive) {
  static std::mutex mu;
  static std::list<std::pair<std::string, std::shared_ptr<const MemberTable>>> recent;  // newest first
  constexpr size_t kKept = 8;
  struct stat st {};
  if (::stat(archive.c_str(), &st) != 0) fail("{}: cannot open: {}", archive, std::strerror(errno));
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = recent.begin(); it != recent.end(); ++it)
      if (it->first == archive && it->second->bytes == st.st_size && it->second->mtime_ns == mtime_ns) {
        recent.splice(recent.begin(), recent, it);
        return it->second;
      }
  }
  auto t = std::make_shared<MemberTable>();
  t->bytes = st.st_size;
  t->mtime_ns = mtime_ns;
  FileSource src(archive);
  TarReader r(src);
  TarMember m;
  while (r.next(&m)) t->members.emplace(m.name, m);
  std::lock_guard<std::mutex> lock(mu);
  recent.emplace_front(archive, t);
  if (recent.size() > kKept) recent.pop_back();
  return t;
}

}  // namespace

std::string read_path_bytes(const std::string& path, int64_t offset_hint, int64_t size_hint) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return read_file(path);
  std::string archive, member;
  if (!split_archive_path(path, &archive, &member)) fail("{}: no such file", path);
  if (offset_hint >= 0 && size_hint >= 0)
    return read_member_at(archive, static_cast<uint64_t>(offset_hint), static_cast<uint64_t>(size_hint));
  const std::shared_ptr<const MemberTable> table = member_table(archive);
  auto it = table->members.find(member);
  if (it == table->members.end()) fail("{}: no member \"{}\" in the archive", archive, member);
  if (it->second.data_offset + it->second.size > static_cast<uint64_t>(table->bytes))
    fail("{}: member \"{}\" is truncated", archive, member);
  return read_member_at(archive, it->second.data_offset, it->second.size);
}

// ---- writer ----

void TarWriter::add(const std::string& name, std::string_view data) {
  auto header = [&](const std::string& n, char type, uint64_t size) {
    char b[kBlock] = {};
    std::memcpy(b, n.data(), std::min<size_t>(n.size(), 100));
    put_octal(b + 100, 8, 0644);
    put_octal(b + 108, 8, 0);
    put_octal(b + 116, 8, 0);
    put_octal(b + 124, 12, size);
    put_octal(b + 136, 12, 0);
    b[156] = type;
    std::memcpy(b + 257, "ustar\0" "00", 8);
    std::memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (char c : b) sum += static_cast<unsigned char>(c);
    put_octal(b + 148, 7, sum);
    b[155] = ' ';
    out_.append(b, kBlock);
  };
  auto body = [&](std::string_view d) {
    out_.append(d);
    out_.append((kBlock - d.size() % kBlock) % kBlock, '\0');
  };
  if (name.size() > 100) {
    std::string rec = " path=" + name + "\n";
    size_t len = rec.size();
    for (;;) {  // the length counts its own digits
      size_t total = std::to_string(len).size() + rec.size();
      if (total == len) break;
      len = total;
    }
    const std::string pax = std::to_string(len) + rec;
    header("PaxHeader", 'x', pax.size());
    body(pax);
  }
  header(name, '0', data.size());
  body(data);
}

std::string TarWriter::finish() {
  out_.append(2 * kBlock, '\0');
  return std::move(out_);
}

}  // namespace clipkit::io
