// clipkit data shapes --out DIR [--train N] [--val M] [--size 64] [--captions-per-image 2]
//                     [--two-shapes 0.3] [--zeroshot-per-class 4] [--seed S] [--json]
// Writes the generated captioned-shapes data set (COCO 2017 layout + zero-shot class folders), see
// src/dataset/shapes.h. Deterministic from the seed.
#include "cmd_shapes.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "dataset/shapes.h"

namespace clipkit::cli {

Subcommand add_data_shapes(CLI::App& data) {
  auto o = std::make_shared<dataset::ShapesOptions>();
  auto out = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* s = data.add_subcommand("shapes", "generate a captioned-shapes data set (COCO layout) for from-scratch training");
  s->add_option("--out", *out, "output folder")->required();
  add_int_flag(*s, "--train", o->train, "training images", 1);
  add_int_flag(*s, "--val", o->val, "validation images", 1);
  add_int_flag(*s, "--size", o->size, "image side in pixels", 16, 1024);
  add_int_flag(*s, "--captions-per-image", o->captions_per_image, "caption phrasings per image", 1);
  add_number_flag(*s, "--two-shapes", o->two_shape_fraction, "fraction of images with two shapes", 0, 1);
  add_int_flag(*s, "--zeroshot-per-class", o->zeroshot_per_class, "held-out zero-shot images per colour+shape class", 0);
  s->add_option("--seed", o->seed, "random seed")->capture_default_str();
  add_json_flag(*s, *json);
  return {s, [o, out, json]() {
            auto r = dataset::write_shapes_dataset(*out, *o);
            if (*json) {
              std::printf("%s\n", nlohmann::json{{"out", *out}, {"train_images", r.train_images},
                                                 {"train_captions", r.train_captions}, {"val_images", r.val_images},
                                                 {"val_captions", r.val_captions}, {"zeroshot_images", r.zeroshot_images}}
                                      .dump()
                                      .c_str());
              return static_cast<int>(kOk);
            }
            std::printf("wrote %s: train %lld images / %lld captions, val %lld images / %lld captions, "
                        "%lld zero-shot images\n",
                        out->c_str(), static_cast<long long>(r.train_images), static_cast<long long>(r.train_captions),
                        static_cast<long long>(r.val_images), static_cast<long long>(r.val_captions),
                        static_cast<long long>(r.zeroshot_images));
            return static_cast<int>(kOk);
          }};
}

}  // namespace clipkit::cli
