// Caption datasets (data/caption_dataset.h): a COCO captions file, a CSV/TSV table, a JSONL or
// JSON-array table. The first byte picks the kind; the rest is the file.
#include "core/error.h"
#include "dataset/caption_dataset.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view body = clipkit::fuzz::as_view(data + 1, size - 1);
  static const char* kNames[] = {"captions.json", "table.csv", "table.tsv", "table.jsonl", "table.json"};
  const std::string path = clipkit::fuzz::write_scratch(kNames[data[0] % 5], body);
  try {
    auto ds = data[0] % 5 == 0 ? clipkit::dataset::load_coco_annotations(path, clipkit::fuzz::scratch_dir(), false)
                               : clipkit::dataset::load_caption_table(path, "image_path", "caption", false);
    ds.unique_images();
    (void)ds.report.summary();
  } catch (const clipkit::Error&) {
  }
  return 0;
}
