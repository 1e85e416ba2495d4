// Streaming tar reader (ustar, pax and GNU long names), for WebDataset shards: an archive is read
// sequentially, member by member, never extracted to disk. Damage does not stop the reader: a
// header with a bad checksum is reported and skipped (the reader resynchronizes on the next valid
// header), a truncated archive ends the stream with a problem naming the cut member.
//
// Supported: regular files ('0', '\0', '7'), pax extended headers ('x' per member, 'g' global:
// path and size), GNU long names ('L', 'K'), base-256 sizes. Directories are passed over silently;
// links, devices, sparse files and other entries are passed over and counted as problems.
//
// Members may also be named by a path through the archive, "DIR/shard.tar/KEY.jpg" (as GDAL's
// /vsitar/ or Python's zipfile.Path do): read_path_bytes() opens either kind.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clipkit::io {

// Where the reader gets its bytes: sequential reads, plus skipping (seeking where possible).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to n bytes into buf; fewer only at the end of the data.
  virtual size_t read(void* buf, size_t n) = 0;
  // Skips n bytes; returns how many were skipped (fewer at the end of the data).
  virtual uint64_t skip(uint64_t n) = 0;
};

// Bytes in memory (tests, fuzzing). The view must outlive the source.
class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : b_(bytes) {}
  size_t read(void* buf, size_t n) override;
  uint64_t skip(uint64_t n) override;

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

// A file read through a 1 MiB buffer; skips seek. Throws Error naming the file if it cannot be opened.
class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  size_t read(void* buf, size_t n) override;
  uint64_t skip(uint64_t n) override;

 private:
  bool refill();
  std::string path_;
  int fd_ = -1;
  std::vector<char> buf_;
  size_t lo_ = 0, hi_ = 0;
};

struct TarMember {
  std::string name;          // full path inside the archive (pax path / GNU long name / ustar prefix + name)
  uint64_t size = 0;         // bytes of data
  uint64_t header_offset = 0;  // where its (first) header block starts in the archive
  uint64_t data_offset = 0;    // where its data starts in the archive
};

// One problem met while reading. kind: "corrupt_header" (bad checksum or numeric field; skipped to
// the next valid header), "truncated" (the archive ends inside a header or a member),
// "unsupported_entry" (link, device, sparse file, ...: passed over), "oversized_header" (a pax or
// long-name record over 1 MiB: passed over).
struct TarProblem {
  std::string kind;
  uint64_t offset = 0;  // archive offset of the block concerned
  std::string what;     // human readable, names the member when known
};

class TarReader {
 public:
  explicit TarReader(ByteSource& src) : src_(src) {}
  // The next regular file; false at the end of the archive (end marker, end of data, or truncation).
  // Data of the previous member that was not read is skipped.
  bool next(TarMember* m);
  // The current member's data. Returns false (and records "truncated", ending the archive) when
  // the archive ends before the member does; `out` then holds what was there.
  bool read_data(std::string* out);
  const std::vector<TarProblem>& problems() const { return problems_; }
  uint64_t offset() const { return pos_; }
  bool truncated() const { return truncated_; }

 private:
  bool read_block(char* b);  // false at end of data (truncation recorded if partial)
  bool skip_bytes(uint64_t n);
  bool read_bytes(uint64_t n, std::string* out);
  void problem(std::string kind, uint64_t off, std::string what);

  ByteSource& src_;
  uint64_t pos_ = 0;
  uint64_t data_left_ = 0, pad_left_ = 0;  // of the current member
  std::string cur_name_;
  bool done_ = false, truncated_ = false, resyncing_ = false;
  uint64_t resync_from_ = 0;
  std::vector<TarProblem> problems_;
};

// Parses a whole archive in memory (the fuzzing entry point): calls fn(member, data) for each
// regular file, returns the problems met. Never throws on malformed input.
std::vector<TarProblem> parse_tar(std::string_view bytes,
                                  const std::function<void(const TarMember&, std::string_view)>& fn);

// The data of `size` bytes at `offset` of the archive file (a member located by an earlier scan).
// Throws Error naming the archive when it is shorter.
std::string read_member_at(const std::string& archive, uint64_t offset, uint64_t size);

// "A/b.tar/c/d.jpg" -> {"A/b.tar", "c/d.jpg"} when A/b.tar is a regular file (the first such
// prefix ending in ".tar"); false otherwise.
bool split_archive_path(const std::string& path, std::string* archive, std::string* member);

// The bytes of a file, or of an archive member named through its archive (see above). With
// offset_hint/size_hint >= 0 (from an earlier scan) the member is read directly; otherwise the
// archive is scanned. Throws Error naming the path when neither exists.
std::string read_path_bytes(const std::string& path, int64_t offset_hint = -1, int64_t size_hint = -1);

// Builds an archive in memory (tests and tools): ustar headers; names over 100 bytes get a pax
// header. mtime 0, mode 0644, owner 0.
class TarWriter {
 public:
  void add(const std::string& name, std::string_view data);
  std::string finish();  // appends the two zero blocks and returns the archive
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

}  // namespace clipkit::io
