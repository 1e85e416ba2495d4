// Decode + CLIP preprocessing throughput on one core, against the Pillow path measured in the
// same run (bench/image_peer.py, Debian python3-pil + python3-numpy), plus the opt-in JPEG DCT
// fast path: its speed and how far its output is from the exact one.
//
//   flock /tmp/clipkit-bench.lock build/bench/image_bench [--images N] [--repeats R] [--size S] [--portrait] [--no-peer]
//
// Inputs: N 640x480 JPEGs (480x640 with --portrait; quality 90, 4:2:0, libjpeg defaults) cut from
// the test photos and written to a temp folder. Reported rates are medians over R passes over all N files.
#include <sched.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "image/encode.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "image/resample.h"
#include "io/npy.h"

namespace fs = std::filesystem;
using namespace clipkit;
using namespace clipkit::image;

namespace {

void write_jpeg(const std::string& path, const Image& img, int quality) {  // libjpeg's defaults: YCbCr 4:2:0
  const std::vector<uint8_t> bytes = encode_jpeg(img, quality);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail("{}: cannot create", path);
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) fail("{}: cannot write", path);
}

// n 640x480 JPEGs (480x640: portrait): random 4:3 crops of the test photos, resized with Pillow's bicubic.
std::vector<std::string> make_inputs(const fs::path& dir, int n, bool portrait) {
  const fs::path src = fs::path(__FILE__).parent_path().parent_path() / "tests/data/images";
  std::vector<Image> photos;
  for (const char* f : {"astronaut.png", "coffee.png", "chelsea.jpg", "rocket.jpg", "hubble_deep_field.jpg",
                        "retina.jpg", "camera.png", "progressive.jpg"})
    photos.push_back(decode_file((src / f).string()));
  std::mt19937 rng(42);
  std::vector<std::string> files;
  for (int i = 0; i < n; ++i) {
    const Image& p = photos[i % photos.size()];
    int cw = std::min(p.width, p.height * 4 / 3);
    cw = cw * (70 + static_cast<int>(rng() % 31)) / 100;
    int ch = cw * 3 / 4;
    int x0 = static_cast<int>(rng() % (p.width - cw + 1)), y0 = static_cast<int>(rng() % (p.height - ch + 1));
    Image crop;
    crop.width = cw;
    crop.height = ch;
    for (int y = 0; y < ch; ++y) {
      const uint8_t* r = &p.rgb[(static_cast<size_t>(y0 + y) * p.width + x0) * 3];
      crop.rgb.insert(crop.rgb.end(), r, r + cw * 3);
    }
    Image out;
    out.width = 640;
    out.height = 480;
    out.rgb.resize(640 * 480 * 3);
    resize_window(crop.rgb.data(), cw, ch, 640, 480, Resample::Bicubic, 0, 0, 640, 480, out.rgb.data(), 640 * 3);
    if (portrait) {  // transposed
      Image t;
      t.width = 480;
      t.height = 640;
      t.rgb.resize(out.rgb.size());
      for (int y = 0; y < 480; ++y)
        for (int x = 0; x < 640; ++x)
          std::copy_n(&out.rgb[(static_cast<size_t>(y) * 640 + x) * 3], 3, &t.rgb[(static_cast<size_t>(x) * 480 + y) * 3]);
      out = std::move(t);
    }
    files.push_back((dir / fmt::format("img{:03d}.jpg", i)).string());
    write_jpeg(files.back(), out, 90);
  }
  return files;
}

template <typename Fn>
double rate(const std::vector<std::string>& files, int repeats, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    auto a = std::chrono::steady_clock::now();
    for (const auto& f : files) fn(f);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return files.size() / t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int n = 48, repeats = 5, size = 224;
  bool portrait = false;
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--images" && i + 1 < argc) n = std::atoi(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--size" && i + 1 < argc) size = std::atoi(argv[++i]);
    else if (a == "--no-peer") peer = false;
    else if (a == "--portrait") portrait = true;
    else { std::fprintf(stderr, "usage: image_bench [--images N] [--repeats R] [--size S] [--portrait] [--no-peer]\n"); return 2; }
  }
  try {
    // One core for both sides: the first CPU this process may use.
    cpu_set_t all, one;
    sched_getaffinity(0, sizeof all, &all);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &all)) { CPU_SET(c, &one); break; }
    sched_setaffinity(0, sizeof one, &one);
    set_num_threads(1);

    char tmpl[] = "/tmp/clipkit_image_bench_XXXXXX";
    if (!mkdtemp(tmpl)) fail("cannot create a temp folder");
    const fs::path dir = tmpl;
    auto files = make_inputs(dir, n, portrait);
    const PreprocessConfig cfg = PreprocessConfig::clip_default(size);
    const size_t per = static_cast<size_t>(3) * size * size;
    std::vector<float> out(per);
    DecodeOptions fast;
    fast.dct_downscale_target = size;

    for (const auto& f : files) load_and_preprocess(f, cfg, out.data());  // warm the page cache
    const double decode_rate = rate(files, repeats, [&](const std::string& f) { decode_file(f); });
    const double exact_rate = rate(files, repeats, [&](const std::string& f) { load_and_preprocess(f, cfg, out.data()); });
    // the same pixels from a decode of the whole image (no rows or columns skipped: DecodeOptions::needed unset)
    const double whole_rate = rate(files, repeats, [&](const std::string& f) { preprocess(decode_file(f), cfg, out.data()); });
    const double fast_rate = rate(files, repeats, [&](const std::string& f) { load_and_preprocess(f, cfg, out.data(), fast); });

    // Fast path accuracy: preprocessed tensors and uint8 crops, exact vs DCT-downscaled.
    std::vector<float> exact_all(per * files.size()), b(per);
    double worst_cos = 1, sum_cos = 0, max_abs = 0;
    int max_u8 = 0;
    double mean_u8 = 0;
    std::vector<uint8_t> ca(per), cb(per);
    for (size_t i = 0; i < files.size(); ++i) {
      float* a = exact_all.data() + i * per;
      load_and_preprocess(files[i], cfg, a);
      load_and_preprocess(files[i], cfg, b.data(), fast);
      double dot = 0, na = 0, nb = 0;
      for (size_t k = 0; k < per; ++k) {
        dot += double(a[k]) * b[k], na += double(a[k]) * a[k], nb += double(b[k]) * b[k];
        max_abs = std::max(max_abs, std::fabs(double(a[k]) - b[k]));
      }
      double cs = dot / std::sqrt(na * nb);
      worst_cos = std::min(worst_cos, cs);
      sum_cos += cs;
      resize_and_crop(decode_file(files[i]), cfg, ca.data());
      resize_and_crop(decode_file(files[i], fast), cfg, cb.data());
      long sum = 0;
      for (size_t k = 0; k < per; ++k) {
        int d = std::abs(int(ca[k]) - int(cb[k]));
        max_u8 = std::max(max_u8, d);
        sum += d;
      }
      mean_u8 += double(sum) / per;
    }
    std::printf("inputs: %d JPEGs %s (q90, 4:2:0), size %d, 1 core, median of %d passes\n", n,
                portrait ? "480x640" : "640x480", size, repeats);
    std::printf("clipkit decode only          : %8.1f img/s\n", decode_rate);
    std::printf("clipkit decode+preprocess    : %8.1f img/s  (exact, bit-identical to HF/Pillow)\n", exact_rate);
    std::printf("  the same, whole JPEG decoded: %8.1f img/s  (the region the crop reads decoded: %.2fx)\n", whole_rate,
                exact_rate / whole_rate);
    std::printf("clipkit --fast-jpeg (DCT 1/2): %8.1f img/s  (%.2fx the exact path, NOT bit-exact)\n", fast_rate,
                fast_rate / exact_rate);
    std::printf("fast vs exact: tensor cosine mean %.6f min %.6f, max abs diff %.4f; uint8 crop max diff %d, mean %.3f levels\n",
                sum_cos / files.size(), worst_cos, max_abs, max_u8, mean_u8 / files.size());
    int rc = 0;
    if (peer) {
      const fs::path script = fs::path(__FILE__).parent_path() / "image_peer.py";
      const std::string dump = (dir / "peer.npy").string();
      std::string cmd = fmt::format("/usr/bin/python3 {} {} {} {} --dump {}", script.string(), dir.string(), size,
                                    repeats, dump);
      std::FILE* p = popen(cmd.c_str(), "r");
      std::string line;
      char buf[4096];
      while (p && std::fgets(buf, sizeof buf, p)) line += buf;
      if (!p || pclose(p) != 0 || line.empty()) {
        std::printf("Pillow peer failed (needs Debian python3-pil + python3-numpy): %s\n", cmd.c_str());
        rc = 1;
      } else {
        auto j = nlohmann::json::parse(line);
        const double pd = j["decode_per_s"], pf = j["full_per_s"];
        Tensor ref = read_npy(dump);
        double diff = 0;
        for (size_t k = 0; k < exact_all.size() && k < static_cast<size_t>(ref.numel()); ++k)
          diff = std::max(diff, std::fabs(double(exact_all[k]) - ref.ptr<float>()[k]));
        std::printf("Pillow %s decode only       : %8.1f img/s\n", j["pillow"].get<std::string>().c_str(), pd);
        std::printf("Pillow path (HF semantics)   : %8.1f img/s\n", pf);
        std::printf("speed-up, exact path vs Pillow path: %.2fx (fast path: %.2fx); max |clipkit - Pillow path| = %g\n",
                    exact_rate / pf, fast_rate / pf, diff);
      }
    }
    fs::remove_all(dir);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "image_bench: %s\n", e.what());
    return 1;
  }
}
