// Image-caption datasets: COCO 2017 captions (one row per caption, the rows of Hugging Face's
// ydshieh/coco_dataset_script config "2017") and simple CSV / JSONL tables (run_clip's --train_file).
//
// Errors: a file that cannot be used at all (missing, invalid JSON, no "annotations", missing column)
// throws clipkit::Error naming the file. A bad row (caption not a string, unknown image id, image
// file missing, malformed record) is skipped and counted in LoadReport -- never fatal.
// Image content is not decoded here (the image decoder reports unreadable files later).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace clipkit::dataset {

struct CaptionRow {
  int64_t image_id = -1;
  int64_t caption_id = -1;  // the caption annotation's own id (HF's "id"), not the image id
  std::string caption;      // verbatim, no stripping
  int height = 0, width = 0;
  std::string file_name, coco_url;
  std::string image_path;  // os.path.join(image dir, file_name)
};

// One kind of problem met while loading: how often, and a few examples.
struct ProblemKind {
  std::string kind;  // stable id: "caption_not_string", "unknown_image_id", "image_file_missing",
                     // "invalid_record", "image_path_missing", "bad_image_entry", "duplicate_image_id",
                     // "image_outside_folder"
  std::string what;  // human readable: "caption is not a string"
  int64_t count = 0;
  bool skips_rows = true;  // false for notes that drop nothing (duplicate_image_id)
  std::vector<std::string> examples;  // at most 3
};

struct LoadReport {
  int64_t rows = 0, skipped = 0;
  std::vector<std::string> problems;  // one human-readable line per kind, with count and examples
  std::vector<ProblemKind> kinds;     // the same, structured
  const ProblemKind* find(const std::string& kind) const;  // nullptr if that kind never occurred
  std::string summary() const;  // "200 rows, 0 skipped" / "10 rows, 5 skipped: 5 x image file missing"
  std::string details(const std::string& indent) const;  // summary, then each problem line indented; "\n"-ended
};

struct CaptionDataset {
  std::string root, split;  // as given (split normalized to "train"/"val"); table: root = file
  std::string source;       // the annotation json / table file actually read
  std::vector<CaptionRow> rows;
  LoadReport report;

  // Indices of the first row of each distinct image_path, in row order.
  std::vector<int64_t> unique_images() const;
};

// COCO 2017 layout: root/annotations/captions_{split}2017.json + root/{split}2017/.
// split: "train" | "val" (also "train2017", "val2017", "validation").
CaptionDataset load_coco(const std::string& root, const std::string& split, bool check_images_exist = true);

// One COCO captions file with an explicit image folder (bad/ files, custom layouts).
CaptionDataset load_coco_annotations(const std::string& annotations_json, const std::string& image_dir,
                                     bool check_images_exist = true);

// CSV/TSV (header row, RFC-4180 quoting) or JSONL (also a .json array of objects) with an image-path
// column and a caption column. Relative image paths resolve against the file's folder. Optional
// columns image_id, caption_id, height, width, file_name, coco_url fill those fields when present;
// otherwise image_id = index of the distinct image path (first-appearance order), caption_id = the
// record's 0-based index in the file, file_name = the path's last component.
CaptionDataset load_caption_table(const std::string& path, const std::string& image_column = "image_path",
                                  const std::string& caption_column = "caption",
                                  bool check_images_exist = true);

// Picks the loader: a folder with annotations/ -> load_coco(split); a .csv/.tsv/.jsonl file ->
// table; a .json file -> COCO captions file if it has "annotations" (images in the sibling
// {split}2017/ folder when it sits in annotations/, else its own folder), otherwise a table;
// WebDataset shards (is_shard_spec: "shards/{00000..00127}.tar") -> their samples, captions from
// `caption_key` (webdataset.h); like a table, the shards are taken whole whatever the split.
CaptionDataset load_captions(const std::string& path_or_root, const std::string& split,
                             bool check_images_exist = true, const std::string& caption_key = "txt");

// Throws clipkit::Error ("<source>: no usable caption rows ... -- nothing to <purpose>") when the
// dataset is empty (e.g. "annotations": [] or every row skipped). Training and eval call this.
void require_rows(const CaptionDataset& ds, const std::string& purpose = "train on");

// "train2017" / "validation" -> "train" / "val"; other names pass through unchanged.
std::string normalize_split(const std::string& split);

}  // namespace clipkit::dataset
