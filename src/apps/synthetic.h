// Procedural images and the copy transforms dedup must catch, for known-answer tests and
// benchmarks (no image data sets needed): a scene is a colour gradient with random shapes and
// texture; "similar" scenes share the palette and layout style but move the shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace clipkit::apps::synthetic {

// A w x h scene from `seed`; `variant` != 0 keeps the background/palette of `seed` but redraws
// the shapes (a distinct but similar image).
image::Image scene(uint64_t seed, int w, int h, uint64_t variant = 0);
// A solid-colour frame with a little texture (for videos with known content).
image::Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b, uint64_t noise_seed = 0);

image::Image resized(const image::Image& im, int w, int h);
image::Image cropped(const image::Image& im, double keep);  // centre crop keeping this fraction of each side
image::Image flipped(const image::Image& im);               // horizontal mirror
image::Image colour_shifted(const image::Image& im, int dr, int dg, int db);
image::Image recompressed(const image::Image& im, int quality);  // JPEG round trip

void write_jpeg(const std::string& path, const image::Image& im, int quality = 92);

// A folder of images with known duplicates: `families` originals (w x h JPEGs), each with its
// copies (exact byte copy, resized, recompressed, cropped, flipped, colour-shifted; `copies` of them,
// cycling through that list) plus one distinct-but-similar image per family (same palette, shapes
// moved) that must NOT be matched. family[i] is the family of files[i]; similar images get their own
// family id. Returns the paths in creation order.
struct DedupSet {
  std::vector<std::string> files;
  std::vector<int> family;
  std::vector<std::string> transform;  // "original", "exact", "resized", ..., "similar"
};
DedupSet make_dedup_set(const std::string& dir, int families, int copies = 6, int w = 160, int h = 120,
                        uint64_t seed = 1);

}  // namespace clipkit::apps::synthetic
