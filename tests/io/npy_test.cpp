#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"

namespace clipkit {
namespace {

TEST(Npy, RoundTrip) {
  auto p = (std::filesystem::temp_directory_path() / ("clipkit_npy_" + std::to_string(::getpid()) + ".npy")).string();
  Tensor t = Tensor::empty(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) t.ptr<float>()[i] = i * 0.5f;
  write_npy(p, t);
  std::string bytes = read_file(p);
  EXPECT_EQ(bytes.substr(1, 5), "NUMPY");
  EXPECT_EQ((bytes.size() - 6 * 4) % 64, 0u);  // header padded to 64 bytes as NumPy does
  EXPECT_NE(bytes.find("'shape': (2, 3)"), std::string::npos);
  Tensor r = read_npy(p);
  EXPECT_EQ(r.shape, t.shape);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.ptr<float>()[i], t.ptr<float>()[i]);
  Tensor v = Tensor::empty(DType::I64, {3});
  write_npy(p, v);
  EXPECT_NE(read_file(p).find("'shape': (3,)"), std::string::npos);
  write_file_atomic(p, "not numpy");
  EXPECT_THROW(read_npy(p), Error);
  std::filesystem::remove(p);
}

// A .npy file from a raw header dict and `data_bytes` bytes of data.
std::string npy_with_header(const std::string& dict, size_t data_bytes) {
  std::string h = dict;
  h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
  h += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>(h.size() >> 8);
  return out + h + std::string(data_bytes, '\0');
}

void expect_npy_error(const std::string& bytes, const std::string& says) {
  try {
    parse_npy(bytes, "crafted.npy");
    FAIL() << "no error; wanted " << says;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("crafted.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

// Issue 14: a shape whose byte size overflows passed the size check; "-2" was read as 2; a
// header claiming more rows than the file holds was allocated before the check.
TEST(Npy, HeadersAreCheckedBeforeAnythingIsAllocated) {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
  expect_npy_error(npy_with_header(f4 + "(1125899906842624, 3, 64, 64), }", 48), "overflows");
  expect_npy_error(npy_with_header(f4 + "(4611686018427387904, 4), }", 0), "overflows");  // 2^64 elements: wraps to 0
  expect_npy_error(npy_with_header(f4 + "(-2,), }", 8), "non-negative integers");
  expect_npy_error(npy_with_header(f4 + "(2, 3.5), }", 8), "non-negative integers");
  expect_npy_error(npy_with_header(f4 + "(99999999999999999999,), }", 8), "too large");
  // Stop 26's CI fuzz find: a 0 among dimensions whose product overflows made the element count 0,
  // passing the check; the tensor's own numel() then overflowed multiplying them in order
  expect_npy_error(npy_with_header(f4 + "(8, 3646666, 65, 666, 6, 66, 6, 6, 6, 86, 0, 666, 6), }", 0), "overflows");
  EXPECT_EQ(parse_npy(npy_with_header(f4 + "(3, 0, 4), }", 0), "empty.npy").numel(), 0);  // a fair empty array
  // 2^40 rows claimed, 2 rows there: refused by size, no terabyte allocation attempted
  expect_npy_error(npy_with_header(f4 + "(1099511627776, 4), }", 32), "needs 17592186044416");
  expect_npy_error(npy_with_header(f4 + "(3, 4), }", 32), "data is 32 bytes but shape [3, 4] of F32 needs 48");
  expect_npy_error(npy_with_header("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4), "fortran_order");
  std::string big_header = npy_with_header(f4 + "(1,), }", 4);
  big_header[6] = 2;  // version 2: a 4-byte header length, here 0xFFFFFFFF-ish
  big_header.insert(10, "\xff\xff");
  expect_npy_error(big_header, "header");
  // what NumPy writes, including Python 2's long suffix and a 0-d array, still reads
  Tensor a = parse_npy(npy_with_header(f4 + "(2L, 3L), }", 24), "ok.npy");
  EXPECT_EQ(a.shape, (Shape{2, 3}));
  Tensor s = parse_npy(npy_with_header(f4 + "(), }", 4), "ok.npy");
  EXPECT_EQ(s.numel(), 1);
  Tensor e = parse_npy(npy_with_header(f4 + "(0, 5), }", 0), "ok.npy");
  EXPECT_EQ(e.shape, (Shape{0, 5}));
}

TEST(Npy, ReadingAFileChecksItsSizeFirst) {
  auto p = (std::filesystem::temp_directory_path() / ("clipkit_npy_lie_" + std::to_string(::getpid()) + ".npy")).string();
  write_file_atomic(p, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }", 32));
  try {
    read_npy(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p + ": data is 32 bytes"), std::string::npos) << e.what();
  }
  std::filesystem::remove(p);
}

}  // namespace
}  // namespace clipkit
