// Shared pieces of the caption loaders (not a public API): problem bookkeeping, Python-style path
// joins, the one-stat-per-image existence check, and the JSON-document entry points that let
// load_captions() read a .json file once and then pick COCO or table.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/caption_dataset.h"

namespace clipkit::dataset::detail {

inline constexpr size_t kMaxExamples = 3;

// Collects problems by kind, in first-seen order; examples are built only while fewer than 3 exist.
class ReportBuilder {
 public:
  ProblemKind& kind(std::string_view id, std::string_view what, bool skips_rows = true);
  template <typename ExampleFn>
  void add(std::string_view id, std::string_view what, ExampleFn&& example, int64_t n = 1,
           bool skips_rows = true) {
    ProblemKind& k = kind(id, what, skips_rows);
    k.count += n;
    if (k.examples.size() < kMaxExamples) k.examples.push_back(example());
  }
  LoadReport finish(int64_t rows);

 private:
  std::vector<ProblemKind> kinds_;
};

// os.path.join(a, b) for two parts: b if absolute or a empty; no doubled '/'.
std::string join_path(std::string_view a, std::string_view b);
// os.path.dirname / basename.
std::string dir_name(std::string_view path);
std::string base_name(std::string_view path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
// exists[i] = paths[i] is a regular file (stat follows links). One stat per path, in parallel.
std::vector<uint8_t> files_exist(const std::vector<const std::string*>& paths);

// Parses a whole JSON document; throws Error "<path>: not valid JSON (...)".
nlohmann::json parse_json_file(const std::string& path, const std::string& text);

// True when the first non-blank line of text is a JSON object on its own (JSON Lines), so that a
// .json file that fails to parse as one document is read as JSONL rather than reported as broken.
bool looks_like_json_lines(const std::string& text);

// A COCO captions file parsed (SAX) into compact records; rows are built by coco_rows().
struct CocoDocument;
struct CocoParseResult {
  enum Kind { kCoco, kNotCoco, kInvalidJson } kind = kNotCoco;  // kNotCoco: no images/annotations keys
  std::string error;                                            // kInvalidJson: "<path>: not valid JSON (...)"
  std::shared_ptr<CocoDocument> doc;
};
CocoParseResult parse_coco(const std::string& path, const std::string& text);
// Throws for an unusable file (invalid JSON, no "annotations", ...); per-row problems go to the report.
// Consumes the parsed captions (moved into the rows).
CaptionDataset coco_rows(CocoParseResult& parsed, const std::string& path, const std::string& image_dir,
                         bool check_images_exist);

// A JSON array of records (or a single record object) -> table rows.
CaptionDataset table_from_json(nlohmann::json& doc, const std::string& path, const std::string& image_column,
                               const std::string& caption_column, bool check_images_exist);

// "null", "an integer 12345", "a string \"abc\"" (clipped): a bad value, for an example message.
std::string describe_value(const nlohmann::json& v);

// Lower-case extension including the dot (".csv"), "" if none.
std::string extension_lower(std::string_view path);

}  // namespace clipkit::dataset::detail
