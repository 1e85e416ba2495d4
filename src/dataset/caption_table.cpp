// CSV / TSV / JSONL / JSON-array caption tables (run_clip's --train_file): an image-path column and
// a caption column per record; relative paths resolve against the table's folder.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/json.h"
#include "dataset/caption_dataset.h"
#include "dataset/csv_reader.h"
#include "dataset/dataset_internal.h"
#include "io/atomic_file.h"

namespace clipkit::dataset::detail {

namespace {

using json = nlohmann::json;

// A record's usable fields before path resolution and the existence check.
struct PendingRow {
  CaptionRow row;          // image_path still as written in the file
  bool has_image_id = false, has_caption_id = false;
  int64_t record = 0;      // 0-based record index in the file
};

std::string clip_text(std::string_view s, size_t n = 60) {
  std::string out(s.substr(0, n));
  if (s.size() > n) out += "...";
  return json_text(json(out));  // quoted + escaped, so newlines stay visible on one line
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Resolves paths, fills derived fields, checks files once per distinct path, builds the dataset.
CaptionDataset finish_table(std::vector<PendingRow>& pending, ReportBuilder& report, const std::string& path,
                            bool check_images_exist) {
  const std::string folder = dir_name(path);
  std::unordered_map<std::string, int32_t> slot_of;  // resolved path -> distinct-image index
  slot_of.reserve(pending.size());
  std::vector<const std::string*> distinct;
  std::vector<int32_t> slot(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    CaptionRow& r = pending[i].row;
    r.image_path = join_path(folder, r.image_path);
    if (r.file_name.empty()) r.file_name = base_name(r.image_path);
    auto [it, fresh] = slot_of.try_emplace(r.image_path, static_cast<int32_t>(distinct.size()));
    if (fresh) distinct.push_back(&it->first);
    slot[i] = it->second;
    if (!pending[i].has_image_id) r.image_id = it->second;
    if (!pending[i].has_caption_id) r.caption_id = pending[i].record;
  }
  std::vector<uint8_t> exists;
  if (check_images_exist) {
    exists = files_exist(distinct);
    for (size_t s = 0; s < distinct.size(); ++s) {
      if (exists[s]) continue;
      ProblemKind& k = report.kind("image_file_missing", "image file missing");
      if (k.examples.size() < kMaxExamples) k.examples.push_back(*distinct[s] + " does not exist");
    }
  }
  CaptionDataset ds;
  ds.root = path;
  ds.source = path;
  ds.rows.reserve(pending.size());
  int64_t missing_rows = 0;
  for (size_t i = 0; i < pending.size(); ++i) {
    if (check_images_exist && !exists[slot[i]]) {
      ++missing_rows;
      continue;
    }
    ds.rows.push_back(std::move(pending[i].row));
  }
  if (missing_rows) report.kind("image_file_missing", "image file missing").count += missing_rows;
  ds.report = report.finish(static_cast<int64_t>(ds.rows.size()));
  return ds;
}

// One JSON record (object) -> pending row or a counted problem. where = "line 7" / "record #3".
void take_json_record(json& rec, int64_t record, const std::string& where, const std::string& image_column,
                      const std::string& caption_column, std::vector<PendingRow>& pending, ReportBuilder& report) {
  if (!rec.is_object()) {
    report.add("invalid_record", "record is not a JSON object",
               [&] { return fmt::format("{}: {}", where, clip_text(json_text(rec), 40)); });
    return;
  }
  auto img = rec.find(image_column);
  if (img == rec.end() || !img->is_string() || img->get_ref<const std::string&>().empty()) {
    report.add("image_path_missing", fmt::format("no image path (column \"{}\" missing, empty or not a string)", image_column),
               [&] { return fmt::format("{}: {}", where, img == rec.end() ? std::string("missing") : describe_value(*img)); });
    return;
  }
  auto cap = rec.find(caption_column);
  if (cap == rec.end() || !cap->is_string()) {
    report.add("caption_not_string", "caption is not a string", [&] {
      return fmt::format("{}: caption is {}", where, cap == rec.end() ? std::string("missing") : describe_value(*cap));
    });
    return;
  }
  PendingRow p;
  p.record = record;
  CaptionRow& r = p.row;
  r.image_path = std::move(img->get_ref<std::string&>());
  r.caption = std::move(cap->get_ref<std::string&>());
  auto int_field = [&](const char* key, int64_t& out) {
    auto it = rec.find(key);
    if (it == rec.end() || !it->is_number_integer()) return false;
    out = it->get<int64_t>();
    return true;
  };
  auto str_field = [&](const char* key, std::string& out) {
    auto it = rec.find(key);
    if (it != rec.end() && it->is_string()) out = std::move(it->get_ref<std::string&>());
  };
  p.has_image_id = int_field("image_id", r.image_id);
  p.has_caption_id = int_field("caption_id", r.caption_id);
  int64_t v = 0;
  if (int_field("height", v)) r.height = static_cast<int>(v);
  if (int_field("width", v)) r.width = static_cast<int>(v);
  str_field("file_name", r.file_name);
  str_field("coco_url", r.coco_url);
  pending.push_back(std::move(p));
}

CaptionDataset load_jsonl(const std::string& path, const std::string& text, const std::string& image_column,
                          const std::string& caption_column, bool check_images_exist) {
  ReportBuilder report;
  std::vector<PendingRow> pending;
  int64_t line_no = 0, record = 0;
  bool any_image_key = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = fmt::format("line {}", line_no);
    json rec;
    if (!try_parse_json(line, &rec)) {
      report.add("invalid_record", "line is not valid JSON",
                 [&] { return fmt::format("{}: {}", where, clip_text(line, 40)); });
      ++record;
      continue;
    }
    if (rec.is_object() && rec.contains(image_column)) any_image_key = true;
    take_json_record(rec, record++, where, image_column, caption_column, pending, report);
  }
  if (record > 0 && !any_image_key)
    fail("{}: no record has the image column \"{}\" (pick the column with --image-column)", path, image_column);
  return finish_table(pending, report, path, check_images_exist);
}

CaptionDataset load_csv(const std::string& path, const std::string& text, char delim, const std::string& image_column,
                        const std::string& caption_column, bool check_images_exist) {
  // captions are text (pandas, which HF's csv loader uses, refuses other bytes): a binary file is refused whole
  if (const size_t good = utf8_error_at(text); good != std::string::npos) {
    const int64_t line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(good), '\n') + 1;
    fail("{}: not UTF-8 text (line {} holds byte 0x{:02x}): is it really a {} file?", path, line,
         static_cast<uint8_t>(text[good]), delim == '\t' ? "TSV" : "CSV");
  }
  CsvReader reader(text, delim);
  std::vector<std::string> header, fields;
  std::string error;
  if (!reader.next(header, error)) fail("{}: empty file (expected a header row with \"{}\" and \"{}\")", path, image_column, caption_column);
  if (!error.empty()) fail("{}: header row: {}", path, error);
  auto column = [&](const std::string& name) -> int {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  auto list_header = [&] {
    std::string s;
    for (size_t i = 0; i < header.size(); ++i) s += (i ? ", " : "") + json_text(json(header[i]));
    return s;
  };
  const int ci = column(image_column), cc = column(caption_column);
  if (ci < 0) fail("{}: no column \"{}\" in the header (columns: {})", path, image_column, list_header());
  if (cc < 0) fail("{}: no column \"{}\" in the header (columns: {})", path, caption_column, list_header());
  const int c_image_id = column("image_id"), c_caption_id = column("caption_id"), c_height = column("height"),
            c_width = column("width"), c_file_name = column("file_name"), c_coco_url = column("coco_url");

  ReportBuilder report;
  std::vector<PendingRow> pending;
  for (int64_t record = 0; reader.next(fields, error); ++record) {
    const int64_t line = reader.line();
    if (!error.empty()) {
      report.add("invalid_record", "malformed CSV record",
                 [&] { return fmt::format("line {}: {}", line, error); });
      continue;
    }
    if (fields.size() != header.size()) {
      report.add("invalid_record", "malformed CSV record", [&] {
        return fmt::format("line {}: {} fields, the header has {}", line, fields.size(), header.size());
      });
      continue;
    }
    if (fields[ci].empty()) {
      report.add("image_path_missing", fmt::format("no image path (column \"{}\" empty)", image_column),
                 [&] { return fmt::format("line {}", line); });
      continue;
    }
    PendingRow p;
    p.record = record;
    CaptionRow& r = p.row;
    r.image_path = std::move(fields[ci]);
    r.caption = std::move(fields[cc]);
    auto int_col = [&](int c, int64_t& out) {
      if (c < 0) return false;
      auto v = parse_int(fields[c]);
      if (v) out = *v;
      return v.has_value();
    };
    p.has_image_id = int_col(c_image_id, r.image_id);
    p.has_caption_id = int_col(c_caption_id, r.caption_id);
    int64_t v = 0;
    if (int_col(c_height, v)) r.height = static_cast<int>(v);
    if (int_col(c_width, v)) r.width = static_cast<int>(v);
    if (c_file_name >= 0) r.file_name = fields[c_file_name];
    if (c_coco_url >= 0) r.coco_url = fields[c_coco_url];
    pending.push_back(std::move(p));
  }
  return finish_table(pending, report, path, check_images_exist);
}

}  // namespace

CaptionDataset table_from_json(json& doc, const std::string& path, const std::string& image_column,
                               const std::string& caption_column, bool check_images_exist) {
  ReportBuilder report;
  std::vector<PendingRow> pending;
  if (doc.is_object()) {
    if (doc.contains("annotations"))
      fail("{}: this is a COCO captions file, not a table (load it with load_coco_annotations / as a COCO folder)", path);
    if (!doc.contains(image_column))
      fail("{}: a JSON object without the image column \"{}\" (expected JSON Lines or an array of records)", path,
           image_column);
    take_json_record(doc, 0, "record #0", image_column, caption_column, pending, report);
  } else if (doc.is_array()) {
    bool any_image_key = false;
    for (size_t i = 0; i < doc.size(); ++i) {
      if (doc[i].is_object() && doc[i].contains(image_column)) any_image_key = true;
      take_json_record(doc[i], static_cast<int64_t>(i), fmt::format("record #{}", i), image_column, caption_column,
                       pending, report);
    }
    if (!doc.empty() && !any_image_key) fail("{}: no record has the image column \"{}\"", path, image_column);
  } else {
    fail("{}: expected an array of records or JSON Lines, found a single JSON value", path);
  }
  return finish_table(pending, report, path, check_images_exist);
}

}  // namespace clipkit::dataset::detail

namespace clipkit::dataset {

CaptionDataset load_caption_table(const std::string& path, const std::string& image_column,
                                  const std::string& caption_column, bool check_images_exist) {
  if (!detail::is_regular_file(path)) fail("{}: caption table does not exist", path);
  std::string ext = detail::extension_lower(path);
  if (ext != ".csv" && ext != ".tsv" && ext != ".jsonl" && ext != ".json")
    fail("{}: unknown table format '{}' (expected .csv, .tsv, .jsonl or .json)", path, ext);
  std::string text = read_file(path);
  if (ext == ".csv" || ext == ".tsv")
    return detail::load_csv(path, text, ext == ".tsv" ? '\t' : ',', image_column, caption_column, check_images_exist);
  if (ext == ".json") {
    // A whole JSON document (array of records) if it parses as one, else JSON Lines.
    nlohmann::json doc;
    if (try_parse_json(text, &doc)) return detail::table_from_json(doc, path, image_column, caption_column, check_images_exist);
    if (!detail::looks_like_json_lines(text)) detail::parse_json_file(path, text);  // throws the parse error
  }
  return detail::load_jsonl(path, text, image_column, caption_column, check_images_exist);
}

}  // namespace clipkit::dataset
