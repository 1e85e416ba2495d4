#include "dataset/shapes.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "image/encode.h"
#include "io/atomic_file.h"

namespace clipkit::dataset {
namespace {

namespace fs = std::filesystem;

struct Rng {  // splitmix64: tiny, seedable, identical everywhere
  uint64_t s;
  uint64_t next() {
    uint64_t x = (s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

uint64_t seed_of(uint64_t seed, uint64_t stream, uint64_t i) {
  Rng r{seed * 0x100000001b3ull ^ (stream << 40) ^ i};
  return r.next();
}

const uint8_t kRgb[6][3] = {{220, 30, 30}, {30, 190, 40}, {40, 70, 230}, {235, 220, 30}, {150, 40, 190}, {245, 245, 245}};
const double kCentre[5][2] = {{0.25, 0.5}, {0.75, 0.5}, {0.5, 0.25}, {0.5, 0.75}, {0.5, 0.5}};  // (x, y) / size

std::string where(int position) {
  static const char* w[] = {"on the left", "on the right", "at the top", "at the bottom", "in the center"};
  return w[position];
}

std::string object(const ShapeSpec& s) { return shape_colours()[s.colour] + " " + shape_kinds()[s.kind]; }

// Random scene: one shape, or two at distinct positions.
std::vector<ShapeSpec> random_scene(Rng& r, double two_fraction) {
  std::vector<ShapeSpec> v(1);
  v[0] = {r.below(6), r.below(3), r.below(5)};
  if (r.uniform() < two_fraction) {
    ShapeSpec b{r.below(6), r.below(3), r.below(4)};
    if (b.position >= v[0].position) ++b.position;  // distinct position
    v.push_back(b);
  }
  return v;
}

}  // namespace

const std::vector<std::string>& shape_colours() {
  static const std::vector<std::string> v = {"red", "green", "blue", "yellow", "purple", "white"};
  return v;
}
const std::vector<std::string>& shape_kinds() {
  static const std::vector<std::string> v = {"circle", "square", "triangle"};
  return v;
}
const std::vector<std::string>& shape_positions() {
  static const std::vector<std::string> v = {"left", "right", "top", "bottom", "center"};
  return v;
}

image::Image render_shapes(const std::vector<ShapeSpec>& shapes, int size, uint64_t seed) {
  if (size < 16) fail("shapes: image size {} is too small (at least 16)", size);
  Rng r{seed};
  image::Image im;
  im.width = im.height = size;
  const uint8_t bg = static_cast<uint8_t>(35 + r.below(20));  // plain dark grey, slightly varied
  im.rgb.assign(static_cast<size_t>(size) * size * 3, bg);
  for (const auto& s : shapes) {
    if (s.colour < 0 || s.colour >= 6 || s.kind < 0 || s.kind >= 3 || s.position < 0 || s.position >= 5)
      fail("shapes: shape index out of range");
    const double cx = (kCentre[s.position][0] + 0.04 * (r.uniform() - 0.5)) * size;
    const double cy = (kCentre[s.position][1] + 0.04 * (r.uniform() - 0.5)) * size;
    const double h = (0.10 + 0.03 * r.uniform()) * size;  // half extent; 5 positions never overlap
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        bool in = false;
        if (s.kind == 0) in = dx * dx + dy * dy <= h * h;
        else if (s.kind == 1) in = std::abs(dx) <= h * 0.9 && std::abs(dy) <= h * 0.9;
        else in = dy <= h && dy >= -h && std::abs(dx) <= (dy + h) * 0.5 * 1.1;  // apex up
        if (!in) continue;
        uint8_t* p = &im.rgb[(static_cast<size_t>(y) * size + x) * 3];
        for (int c = 0; c < 3; ++c) p[c] = kRgb[s.colour][c];
      }
  }
  return im;
}

std::vector<std::string> shape_captions(const std::vector<ShapeSpec>& shapes) {
  if (shapes.empty()) fail("shapes: a scene needs at least one shape");
  const ShapeSpec& a = shapes[0];
  if (shapes.size() == 1) {
    const std::string o = object(a), w = where(a.position);
    return {"a " + o + " " + w, "there is a " + o + " " + w, "a " + o, "a " + shape_colours()[a.colour] + " shape " + w,
            w + " there is a " + o};
  }
  const ShapeSpec& b = shapes[1];
  const std::string A = "a " + object(a) + " " + where(a.position), B = "a " + object(b) + " " + where(b.position);
  return {A + " and " + B, B + " and " + A, "a " + object(a) + " and a " + object(b), "there is " + A + " and " + B};
}

ShapesSummary write_shapes_dataset(const std::string& dir, const ShapesOptions& o) {
  if (o.train < 1 || o.val < 1) fail("shapes: --train and --val must be at least 1 (got {} and {})", o.train, o.val);
  if (o.size < 16 || o.size > 1024) fail("shapes: --size must be in 16..1024 (got {})", o.size);
  if (o.captions_per_image < 1) fail("shapes: captions per image must be at least 1");
  if (o.zeroshot_per_class < 0) fail("shapes: zero-shot images per class must be >= 0");
  ShapesSummary sum;
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "annotations", ec);
  if (ec) fail("{}: cannot create folder: {}", dir, ec.message());

  const char* splits[2] = {"train", "val"};
  for (int si = 0; si < 2; ++si) {
    const int n = si == 0 ? o.train : o.val;
    const fs::path img_dir = fs::path(dir) / (std::string(splits[si]) + "2017");
    fs::create_directories(img_dir, ec);
    if (ec) fail("{}: cannot create folder: {}", img_dir.string(), ec.message());
    // Scenes and captions sequentially (cheap, deterministic); images in parallel.
    std::vector<std::vector<ShapeSpec>> scenes(n);
    nlohmann::json images = nlohmann::json::array(), anns = nlohmann::json::array();
    int64_t ann_id = si * 10000000 + 1;
    for (int i = 0; i < n; ++i) {
      Rng r{seed_of(o.seed, si + 1, i)};
      scenes[i] = random_scene(r, o.two_shape_fraction);
      const int64_t image_id = si * 10000000 + i + 1;
      char name[32];
      std::snprintf(name, sizeof name, "%012lld.png", static_cast<long long>(image_id));
      images.push_back({{"id", image_id}, {"file_name", name}, {"height", o.size}, {"width", o.size}});
      auto caps = shape_captions(scenes[i]);
      // canonical first, then distinct random others
      std::vector<int> order(caps.size() - 1);
      for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k) + 1;
      for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[r.below(static_cast<int>(k))]);
      const int m = std::min<int>(o.captions_per_image, static_cast<int>(caps.size()));
      for (int k = 0; k < m; ++k)
        anns.push_back({{"id", ann_id++}, {"image_id", image_id}, {"caption", caps[k == 0 ? 0 : order[k - 1]]}});
    }
    std::string err;
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "%012lld.png", static_cast<long long>(si * 10000000 + i + 1));
        try {
          image::write_png((img_dir / name).string(), render_shapes(scenes[i], o.size, seed_of(o.seed, 10 + si, i)));
        } catch (const Error& ex) {
#pragma omp critical(clipkit_shapes_error)
          if (err.empty()) err = ex.what();
        }
      }
    }, 16);
    if (!err.empty()) throw Error(err);
    const int64_t ncap = static_cast<int64_t>(anns.size());
    nlohmann::json doc = {{"info", {{"description", "clipkit generated captioned shapes"}, {"seed", o.seed}}},
                          {"images", std::move(images)},
                          {"annotations", std::move(anns)}};
    const fs::path ann_path = fs::path(dir) / "annotations" / ("captions_" + std::string(splits[si]) + "2017.json");
    const std::string text = json_text(doc);
    write_file_atomic(ann_path.string(), text);
    (si == 0 ? sum.train_images : sum.val_images) = n;
    (si == 0 ? sum.train_captions : sum.val_captions) = ncap;
  }

  // Held-out single-shape images for zero-shot classification, one folder per class per task.
  const int per = o.zeroshot_per_class;
  const int nz = 18 * per;
  for (const char* task : {"object", "colour", "shape"})
    for (int c = 0; c < 6; ++c)
      for (int k = 0; k < 3; ++k) {
        const std::string label = std::string(task) == "object" ? object({c, k, 0})
                                  : std::string(task) == "colour" ? shape_colours()[c]
                                                                  : shape_kinds()[k];
        fs::create_directories(fs::path(dir) / "zeroshot" / task / label, ec);
        if (ec) fail("{}: cannot create folder: {}", dir, ec.message());
      }
  std::string err;
  parallel_for(nz, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int cls = static_cast<int>(i / per), c = cls / 3, k = cls % 3;
      Rng r{seed_of(o.seed, 3, i)};
      const ShapeSpec s{c, k, r.below(5)};
      const image::Image im = render_shapes({s}, o.size, seed_of(o.seed, 13, i));
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(i));
      try {
        const fs::path z = fs::path(dir) / "zeroshot";
        image::write_png((z / "object" / object(s) / name).string(), im);
        image::write_png((z / "colour" / shape_colours()[c] / name).string(), im);
        image::write_png((z / "shape" / shape_kinds()[k] / name).string(), im);
      } catch (const Error& ex) {
#pragma omp critical(clipkit_shapes_error)
        if (err.empty()) err = ex.what();
      }
    }
  }, 8);
  if (!err.empty()) throw Error(err);
  sum.zeroshot_images = nz;
  return sum;
}

}  // namespace clipkit::dataset
