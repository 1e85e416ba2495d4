// clipkit data check --data ROOT|FILE|SHARDS [--split train] [--folder DIR] [--json] [--show N] [--no-image-check]
//                    [--caption-key txt|FIELD]
// (--images DIR is the old spelling of --folder DIR: the image folder of a COCO captions .json)
// Loads a caption dataset the way training does and reports rows, distinct images and problems.
// SHARDS: WebDataset .tar shards ('shards/{00000..00127}.tar', globs), streamed.
// Exit: 0 all rows usable, 3 (kSkippedInputs) some rows skipped, 1 unusable file or no rows at all.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cmd_embed_bulk.h"
#include "cmd_shapes.h"
#include "command.h"
#include "core/error.h"
#include "core/json.h"
#include "dataset/caption_dataset.h"
#include "dataset/webdataset.h"

namespace clipkit::cli {
namespace {

struct DataCheckOptions {
  std::string data, split = "train", images, image_column = "image_path", caption_column = "caption";
  std::string caption_key = "txt";
  bool json = false, no_image_check = false;
  int show = 0;
};

nlohmann::json row_json(const dataset::CaptionRow& r) {
  return {{"image_id", r.image_id}, {"caption_id", r.caption_id}, {"caption", r.caption},
          {"height", r.height},     {"width", r.width},           {"file_name", r.file_name},
          {"coco_url", r.coco_url}, {"image_path", r.image_path}};
}

int run_check(const DataCheckOptions& o) {
  const bool custom_columns = o.image_column != "image_path" || o.caption_column != "caption";
  dataset::CaptionDataset ds =
      dataset::is_shard_spec(o.data) ? dataset::load_shard_captions(o.data, o.caption_key)
      : !o.images.empty()         ? dataset::load_coco_annotations(o.data, o.images, !o.no_image_check)
      : custom_columns  ? dataset::load_caption_table(o.data, o.image_column, o.caption_column, !o.no_image_check)
                        : dataset::load_captions(o.data, o.split, !o.no_image_check);
  const int64_t images = static_cast<int64_t>(ds.unique_images().size());
  const int show = std::min<int>(o.show, static_cast<int>(ds.rows.size()));
  if (o.json) {
    nlohmann::json j = {{"source", ds.source}, {"split", ds.split},   {"rows", ds.report.rows},
                        {"unique_images", images}, {"skipped", ds.report.skipped},
                        {"problems", nlohmann::json::array()}};
    for (const auto& k : ds.report.kinds)
      j["problems"].push_back({{"kind", k.kind}, {"what", k.what}, {"count", k.count},
                               {"skips_rows", k.skips_rows}, {"examples", k.examples}});
    if (show > 0) {
      j["head"] = nlohmann::json::array();
      for (int i = 0; i < show; ++i) j["head"].push_back(row_json(ds.rows[i]));
    }
    std::printf("%s\n", json_text(j, 2).c_str());
  } else {
    std::printf("source: %s\n", ds.source.c_str());
    if (!ds.split.empty()) std::printf("split: %s\n", ds.split.c_str());
    std::printf("rows: %lld\nunique images: %lld\nskipped: %lld\n", static_cast<long long>(ds.report.rows),
                static_cast<long long>(images), static_cast<long long>(ds.report.skipped));
    for (int i = 0; i < show; ++i) std::printf("%s\n", json_text(row_json(ds.rows[i])).c_str());
  }
  // Problems go to stderr in both modes, so a script reading stdout still sees what was skipped.
  for (const auto& p : ds.report.problems) std::fprintf(stderr, "clipkit: %s\n", p.c_str());
  dataset::require_rows(ds, "train on");
  return ds.report.skipped > 0 ? kSkippedInputs : kOk;
}

const CommandRegistrar reg("data", "inspect caption datasets (COCO 2017 folders, CSV/JSONL tables); generate a shapes data set",
                           [](CLI::App& app) -> RunFn {
  auto o = std::make_shared<DataCheckOptions>();
  app.require_subcommand(1);
  CLI::App* check = app.add_subcommand("check", "load a dataset; print rows, distinct images and skipped rows");
  check->add_option("--data", o->data,
                    "COCO 2017 root folder, a .csv/.tsv/.jsonl/.json caption table, or WebDataset shards "
                    "('shards/{00000..00127}.tar', globs)")
      ->required();
  check->add_option("--split", o->split, "COCO split: train or val")->capture_default_str();
  add_folder_flag(*check, o->images, "image folder for a COCO captions .json given as --data");
  check->add_option("--images", o->images)->group("");  // the old spelling
  check->add_option("--image-column", o->image_column, "table column holding the image path")->capture_default_str();
  check->add_option("--caption-column", o->caption_column, "table column holding the caption")->capture_default_str();
  add_caption_key_flag(*check, o->caption_key);
  add_int_flag(*check, "--show", o->show, "also print the first N rows", 0);
  add_json_flag(*check, o->json, "print the report as JSON");
  check->add_flag("--no-image-check", o->no_image_check, "do not check that image files exist");
  Subcommand shapes = add_data_shapes(app);
  return [o, check, shapes]() -> int {
    if (check->parsed()) return run_check(*o);
    if (shapes.app->parsed()) return shapes.run();
    return kUsage;
  };
});

}  // namespace
}  // namespace clipkit::cli
