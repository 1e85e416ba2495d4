// A generated captioned-shapes data set for from-scratch training demos and tests: each image is
// one or two coloured shapes (circle/square/triangle) at named positions (left/right/top/bottom/
// center) on a plain dark background, with several caption phrasings per image
// ("a red circle on the left", "there is a blue square at the top", ...). Deterministic from the seed.
//
// Written in COCO 2017 layout so `clipkit train/eval --data DIR` read it unchanged:
//   DIR/annotations/captions_{train,val}2017.json   ("images" + "annotations" lists)
//   DIR/{train,val}2017/NNNNNNNNNNNN.png            (size x size RGB PNG)
// plus held-out single-shape images for zero-shot classification (`clipkit classify --eval`):
//   DIR/zeroshot/object/<colour> <shape>/*.png      (prompt "a {}": 18 classes)
//   DIR/zeroshot/colour/<colour>/*.png              (prompt "a {} shape": 6 classes)
//   DIR/zeroshot/shape/<shape>/*.png                (prompt "a {}": 3 classes)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace clipkit::dataset {

const std::vector<std::string>& shape_colours();    // red green blue yellow purple white
const std::vector<std::string>& shape_kinds();      // circle square triangle
const std::vector<std::string>& shape_positions();  // left right top bottom center

struct ShapeSpec {
  int colour = 0, kind = 0, position = 0;  // indices into the lists above
};

// One scene: the shapes drawn at their positions (small seeded jitter of place and size).
image::Image render_shapes(const std::vector<ShapeSpec>& shapes, int size, uint64_t seed);

// All caption phrasings of a scene; the first is the canonical "a red circle on the left".
std::vector<std::string> shape_captions(const std::vector<ShapeSpec>& shapes);

struct ShapesOptions {
  int train = 2000, val = 200;  // images per split
  int size = 64;                // image side in pixels
  int captions_per_image = 2;   // canonical + random other phrasings (1..phrasings available)
  double two_shape_fraction = 0.3;
  int zeroshot_per_class = 4;   // held-out images per (colour, shape) class
  uint64_t seed = 0;
};

struct ShapesSummary {
  int64_t train_images = 0, val_images = 0, train_captions = 0, val_captions = 0, zeroshot_images = 0;
};

// Writes the data set under `dir` (created; existing files are overwritten). Throws clipkit::Error
// for bad options or unwritable files.
ShapesSummary write_shapes_dataset(const std::string& dir, const ShapesOptions& o);

}  // namespace clipkit::dataset
