#include "io/tar_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit::io {
namespace {

namespace fs = std::filesystem;

struct Got {
  std::vector<std::string> names, data;
  std::vector<TarProblem> problems;
};

Got parse(std::string_view bytes) {
  Got g;
  g.problems = parse_tar(bytes, [&](const TarMember& m, std::string_view d) {
    g.names.push_back(m.name);
    g.data.emplace_back(d);
  });
  return g;
}

int count_kind(const std::vector<TarProblem>& ps, const std::string& kind) {
  int n = 0;
  for (auto& p : ps) n += p.kind == kind;
  return n;
}

std::string blob(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

// A raw ustar header block (valid checksum) for hand-made entries.
std::string header(const std::string& name, char type, uint64_t size, const std::string& prefix = "") {
  char b[512] = {};
  std::memcpy(b, name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(b + 100, 8, "%07o", 0644);
  std::snprintf(b + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  b[156] = type;
  std::memcpy(b + 257, "ustar\0" "00", 8);
  std::memcpy(b + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  std::memset(b + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  std::snprintf(b + 148, 8, "%06o", sum);
  return std::string(b, 512);
}

std::string padded(std::string d) {
  d.append((512 - d.size() % 512) % 512, '\0');
  return d;
}

TEST(TarReader, RoundTripsSizesAroundBlockBoundaries) {
  TarWriter w;
  const std::vector<size_t> sizes = {0, 1, 511, 512, 513, 5000};
  for (size_t i = 0; i < sizes.size(); ++i) w.add("dir/m" + std::to_string(i) + ".bin", blob(sizes[i], char(i)));
  const std::string long_name = std::string(150, 'x') + "/000001.jpg";  // > 100 bytes: pax header
  w.add(long_name, "jpeg bytes");
  auto g = parse(w.finish());
  ASSERT_EQ(g.names.size(), sizes.size() + 1);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(g.names[i], "dir/m" + std::to_string(i) + ".bin");
    EXPECT_EQ(g.data[i], blob(sizes[i], char(i)));
  }
  EXPECT_EQ(g.names.back(), long_name);
  EXPECT_EQ(g.data.back(), "jpeg bytes");
  EXPECT_TRUE(g.problems.empty());
}

TEST(TarReader, ReadsUstarPrefixGnuLongNamesAndBase256Sizes) {
  std::string a;
  a += header("000001.jpg", '0', 3, "some/deep/folder") + padded("abc");
  const std::string longn = std::string(120, 'y') + "/000002.txt";
  a += header("././@LongLink", 'L', longn.size() + 1) + padded(longn + '\0');
  a += header(longn.substr(0, 100), '0', 2) + padded("hi");
  // base-256 size field (GNU, for members over 8 GiB)
  std::string h = header("000003.txt", '0', 0);
  std::memset(&h[124], 0, 12);
  h[124] = static_cast<char>(0x80);
  h[135] = 5;
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(&h[148], 8, "%06o", sum);
  a += h + padded("12345");
  a += std::string(1024, '\0');
  auto g = parse(a);
  ASSERT_EQ(g.names.size(), 3u);
  EXPECT_EQ(g.names[0], "some/deep/folder/000001.jpg");
  EXPECT_EQ(g.names[1], longn);
  EXPECT_EQ(g.data[1], "hi");
  EXPECT_EQ(g.names[2], "000003.txt");
  EXPECT_EQ(g.data[2], "12345");
  EXPECT_TRUE(g.problems.empty());
}

TEST(TarReader, PassesOverDirectoriesAndCountsLinks) {
  std::string a = header("d/", '5', 0) + header("d/link.jpg", '2', 0) + header("d/a.txt", '0', 1) + padded("A");
  a += std::string(1024, '\0');
  auto g = parse(a);
  ASSERT_EQ(g.names, std::vector<std::string>{"d/a.txt"});
  EXPECT_EQ(count_kind(g.problems, "unsupported_entry"), 1);
  EXPECT_EQ(g.problems.size(), 1u);
}

TEST(TarReader, SkipsACorruptHeaderAndResynchronizes) {
  TarWriter w;
  for (int i = 0; i < 5; ++i) w.add("00000" + std::to_string(i) + ".txt", blob(700, char(i)));
  std::string a = w.finish();
  // member 2's header starts at 2 * (512 + 1024)
  a[2 * 1536 + 10] ^= 0x55;
  auto g = parse(a);
  EXPECT_EQ(g.names, (std::vector<std::string>{"000000.txt", "000001.txt", "000003.txt", "000004.txt"}));
  EXPECT_EQ(g.data[2], blob(700, 3));
  ASSERT_EQ(count_kind(g.problems, "corrupt_header"), 1);
  EXPECT_NE(g.problems[0].what.find("skipped 1536 bytes"), std::string::npos) << g.problems[0].what;
  EXPECT_EQ(g.problems[0].offset, 2u * 1536);
}

TEST(TarReader, ReportsTruncationInsideDataAndInsideAHeader) {
  TarWriter w;
  w.add("a.txt", blob(1000, 1));
  w.add("b.jpg", blob(3000, 2));
  const std::string a = w.finish();
  // cut inside b.jpg's data
  auto g = parse(std::string_view(a).substr(0, 1536 + 512 + 100));
  EXPECT_EQ(g.names, std::vector<std::string>{"a.txt"});
  ASSERT_EQ(count_kind(g.problems, "truncated"), 1);
  EXPECT_NE(g.problems[0].what.find("b.jpg"), std::string::npos) << g.problems[0].what;
  // cut inside b.jpg's header
  g = parse(std::string_view(a).substr(0, 1536 + 200));
  EXPECT_EQ(g.names, std::vector<std::string>{"a.txt"});
  EXPECT_EQ(count_kind(g.problems, "truncated"), 1);
  // a reader that skips the data (never reads it) reports the cut too
  MemorySource src(std::string_view(a).substr(0, 1536 + 512 + 100));
  TarReader r(src);
  TarMember m;
  int n = 0;
  while (r.next(&m)) ++n;
  EXPECT_EQ(n, 2);
  EXPECT_TRUE(r.truncated());
  // no end-of-archive marker at all is not damage
  g = parse(std::string_view(a).substr(0, a.size() - 1024));
  EXPECT_EQ(g.names.size(), 2u);
  EXPECT_TRUE(g.problems.empty());
}

TEST(TarReader, ReadsWhatGnuTarWritesInEveryFormat) {
  if (std::system("command -v tar >/dev/null 2>&1") != 0) GTEST_SKIP() << "no tar";
  const fs::path dir = fs::temp_directory_path() / ("clipkit_tar_" + std::to_string(::getpid()));
  fs::create_directories(dir / "src" / std::string(110, 'd'));
  write_file_atomic((dir / "src" / "000001.jpg").string(), blob(1234, 3));
  write_file_atomic((dir / "src" / std::string(110, 'd') / "000002.txt").string(), "a caption");
  for (const char* fmt : {"gnu", "pax", "ustar", "v7"}) {
    const std::string tar = (dir / (std::string(fmt) + ".tar")).string();
    const std::string cmd = "cd " + (dir / "src").string() + " && tar --format=" + fmt + " -cf " + tar +
                            " 000001.jpg " + std::string(110, 'd') + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) continue;  // v7/ustar cannot store the 110-byte folder name
    Got g;
    FileSource src(tar);
    TarReader r(src);
    TarMember m;
    std::string d;
    while (r.next(&m))
      if (r.read_data(&d)) g.names.push_back(m.name), g.data.push_back(d);
    ASSERT_EQ(g.names.size(), 2u) << fmt;
    EXPECT_EQ(g.names[0], "000001.jpg") << fmt;
    EXPECT_EQ(g.data[0], blob(1234, 3)) << fmt;
    EXPECT_EQ(g.names[1], std::string(110, 'd') + "/000002.txt") << fmt;
    EXPECT_EQ(g.data[1], "a caption") << fmt;
    EXPECT_TRUE(r.problems().empty()) << fmt;
  }
  fs::remove_all(dir);
}

TEST(TarReader, NamesMembersThroughTheArchivePath) {
  const fs::path dir = fs::temp_directory_path() / ("clipkit_tarpath_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TarWriter w;
  w.add("k/000001.jpg", "JPEG");
  w.add("000002.txt", "caption");
  const std::string tar = (dir / "shard.tar").string();
  write_file_atomic(tar, w.finish());
  std::string a, m;
  ASSERT_TRUE(split_archive_path(tar + "/k/000001.jpg", &a, &m));
  EXPECT_EQ(a, tar);
  EXPECT_EQ(m, "k/000001.jpg");
  EXPECT_FALSE(split_archive_path((dir / "other.tar/x.jpg").string(), &a, &m));
  EXPECT_EQ(read_path_bytes(tar + "/k/000001.jpg"), "JPEG");
  EXPECT_EQ(read_path_bytes(tar + "/000002.txt", 512 * 3, 7), "caption");  // located by an earlier scan
  EXPECT_THROW(read_path_bytes(tar + "/missing.jpg"), Error);
  EXPECT_THROW(read_path_bytes((dir / "nothing.jpg").string()), Error);
  EXPECT_THROW(read_member_at(tar, 1 << 20, 10), Error);
  // the member table of an archive is kept between reads, and made again when the archive changes
  TarWriter w2;
  w2.add("k/000001.jpg", "another JPEG");
  write_file_atomic(tar, w2.finish());
  EXPECT_EQ(read_path_bytes(tar + "/k/000001.jpg"), "another JPEG");
  EXPECT_THROW(read_path_bytes(tar + "/000002.txt"), Error);
  std::string cut = read_file(tar);
  write_file_atomic(tar, cut.substr(0, 515));  // the member's data is cut
  EXPECT_THROW(read_path_bytes(tar + "/k/000001.jpg"), Error);
  fs::remove_all(dir);
}

// Fuzzing in miniature: random damage never throws or crashes, and every member returned is one
// of the original members with its exact bytes (damage loses members, never invents data).
TEST(TarReader, RandomDamageNeverThrowsNorInventsMembers) {
  TarWriter w;
  std::vector<std::string> names, data;
  for (int i = 0; i < 12; ++i) {
    names.push_back((i % 3 ? "" : std::string(120, 'p') + "/") + std::to_string(100000 + i) + ".bin");
    data.push_back(blob(100 + 300 * i, char(i)));
    w.add(names.back(), data.back());
  }
  const std::string good = w.finish();
  std::mt19937 rng(5);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string a = good;
    const int kind = trial % 3;
    if (kind == 0) {
      for (int k = 0; k < 1 + trial % 7; ++k) a[rng() % a.size()] = static_cast<char>(rng());
    } else if (kind == 1) {
      a.resize(rng() % a.size());
    } else {
      const size_t at = (rng() % (a.size() / 512)) * 512;
      for (size_t i = 0; i < 512; ++i) a[at + i] = static_cast<char>(rng());
    }
    Got g;
    ASSERT_NO_THROW(g = parse(a)) << trial;
    for (size_t i = 0; i < g.names.size(); ++i) {
      auto it = std::find(names.begin(), names.end(), g.names[i]);
      if (it == names.end()) continue;  // a damaged name byte: a member under another name
      if (kind == 1) {
        EXPECT_EQ(g.data[i], data[static_cast<size_t>(it - names.begin())]) << trial;
      }
    }
  }
}

}  // namespace
}  // namespace clipkit::io
