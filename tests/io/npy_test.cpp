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

}  // namespace
}  // namespace clipkit
