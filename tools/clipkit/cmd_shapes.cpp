// clipkit data shapes --out DIR [--train N] [--val M] [--size 64] [--captions-per-image 2]
//                     [--two-shapes 0.3] [--zeroshot-per-class 4] [--seed S]
// Writes the generated captioned-shapes data set (COCO 2017 layout + zero-shot class folders), see
// src/data/shapes.h. Deterministic from the seed.
#include "cmd_shapes.h"

#include <cstdio>
#include <memory>

#include "data/shapes.h"

namespace clipkit::cli {

Subcommand add_data_shapes(CLI::App& data) {
  auto o = std::make_shared<data::ShapesOptions>();
  auto out = std::make_shared<std::string>();
  CLI::App* s = data.add_subcommand("shapes", "generate a captioned-shapes data set (COCO layout) for from-scratch training");
  s->add_option("--out", *out, "output folder")->required();
  s->add_option("--train", o->train, "training images")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--val", o->val, "validation images")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--size", o->size, "image side in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  s->add_option("--captions-per-image", o->captions_per_image, "caption phrasings per image")
      ->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--two-shapes", o->two_shape_fraction, "fraction of images with two shapes")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  s->add_option("--zeroshot-per-class", o->zeroshot_per_class, "held-out zero-shot images per colour+shape class")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--seed", o->seed, "random seed")->capture_default_str();
  return {s, [o, out]() {
            auto r = data::write_shapes_dataset(*out, *o);
            std::printf("wrote %s: train %lld images / %lld captions, val %lld images / %lld captions, "
                        "%lld zero-shot images\n",
                        out->c_str(), static_cast<long long>(r.train_images), static_cast<long long>(r.train_captions),
                        static_cast<long long>(r.val_images), static_cast<long long>(r.val_captions),
                        static_cast<long long>(r.zeroshot_images));
            return static_cast<int>(kOk);
          }};
}

}  // namespace clipkit::cli
