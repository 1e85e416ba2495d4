#include "pipeline/embedding_rows.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "io/npy.h"

namespace clipkit::pipeline {

namespace {

struct Fd {
  int fd = -1;
  explicit Fd(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  }
  ~Fd() { ::close(fd); }
  void pread_all(void* dst, size_t n, size_t off, const std::string& path) const {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
      ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) fail("{}: short read at byte {}", path, off);
      p += r, n -= static_cast<size_t>(r), off += static_cast<size_t>(r);
    }
  }
};

}  // namespace

EmbeddingRows::EmbeddingRows(const EmbeddingShards& s) : npy_(s.npy), dim_(s.dim) {
  first_.push_back(0);
  for (auto& p : npy_) {
    NpyHeader h = read_npy_header(p);
    if (h.dtype != DType::F32 || h.shape.size() != 2 || h.shape[1] != dim_)
      fail("{}: expected float32 [rows, {}], found {} {}", p, dim_, dtype_name(h.dtype), shape_str(h.shape));
    offset_.push_back(h.data_offset);
    first_.push_back(first_.back() + h.shape[0]);
  }
}

int64_t EmbeddingRows::shard_of(int64_t row) const {
  if (row < 0 || row >= rows()) fail("row {} is outside the {} embedded rows", row, rows());
  return static_cast<int64_t>(std::upper_bound(first_.begin(), first_.end(), row) - first_.begin()) - 1;
}

void EmbeddingRows::read(int64_t first, int64_t n, float* x) const {
  if (n <= 0) return;
  if (first < 0 || first + n > rows()) fail("rows [{}, {}) are outside the {} embedded rows", first, first + n, rows());
  for (int64_t s = shard_of(first); n > 0; ++s) {
    const int64_t in = first - first_[static_cast<size_t>(s)];
    const int64_t k = std::min(n, first_[static_cast<size_t>(s) + 1] - first);
    Fd f(npy_[static_cast<size_t>(s)]);
    f.pread_all(x, static_cast<size_t>(k * dim_) * sizeof(float),
                offset_[static_cast<size_t>(s)] + static_cast<size_t>(in * dim_) * sizeof(float), npy_[static_cast<size_t>(s)]);
    x += k * dim_, first += k, n -= k;
  }
}

void EmbeddingRows::read_rows(const std::vector<int64_t>& rows_in, float* x) const {
  size_t i = 0;
  while (i < rows_in.size()) {
    const int64_t s = shard_of(rows_in[i]);
    Fd f(npy_[static_cast<size_t>(s)]);
    for (; i < rows_in.size() && rows_in[i] < first_[static_cast<size_t>(s) + 1]; ++i, x += dim_) {
      if (i > 0 && rows_in[i] < rows_in[i - 1]) fail("read_rows: rows must be ascending");
      const int64_t in = rows_in[i] - first_[static_cast<size_t>(s)];
      f.pread_all(x, static_cast<size_t>(dim_) * sizeof(float),
                  offset_[static_cast<size_t>(s)] + static_cast<size_t>(in * dim_) * sizeof(float), npy_[static_cast<size_t>(s)]);
    }
  }
}

void for_each_record(const EmbeddingShards& s, const std::function<void(int64_t, nlohmann::json&)>& fn,
                     const std::vector<int64_t>* wanted) {
  int64_t row = 0;
  size_t w = 0;
  for (auto& path : s.jsonl) {
    if (wanted && w >= wanted->size()) return;
    std::ifstream in(path);
    if (!in) fail("{}: cannot open", path);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      if (wanted) {
        while (w < wanted->size() && (*wanted)[w] < row) ++w;
        if (w >= wanted->size()) return;
        if ((*wanted)[w] != row) {
          ++row;
          continue;
        }
      }
      nlohmann::json j;  // core/json.h: names written from non-UTF-8 bytes read back exactly
      if (!try_parse_json(line, &j)) fail("{}: line {} is not valid JSON", path, line_no);
      fn(row, j);
      ++row;
    }
  }
}

}  // namespace clipkit::pipeline
