// Common parts of the caption loaders: reports, paths, existence checks, and load_captions().
#include "dataset/caption_dataset.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "dataset/dataset_internal.h"
#include "dataset/webdataset.h"
#include "io/atomic_file.h"

namespace clipkit::dataset {

// ---- report -------------------------------------------------------------------------------------

const ProblemKind* LoadReport::find(const std::string& kind) const {
  for (const auto& k : kinds)
    if (k.kind == kind) return &k;
  return nullptr;
}

std::string LoadReport::summary() const {
  std::string s = fmt::format("{} rows, {} skipped", rows, skipped);
  const char* sep = ": ";
  for (const auto& k : kinds) {
    if (!k.skips_rows) continue;
    s += fmt::format("{}{} x {}", sep, k.count, k.what);
    sep = ", ";
  }
  return s;
}

std::string LoadReport::details(const std::string& indent) const {
  std::string s = summary() + "\n";
  for (const auto& p : problems) s += indent + p + "\n";
  return s;
}

namespace detail {

ProblemKind& ReportBuilder::kind(std::string_view id, std::string_view what, bool skips_rows) {
  for (auto& k : kinds_)
    if (k.kind == id) return k;
  ProblemKind& k = kinds_.emplace_back();
  k.kind = id;
  k.what = what;
  k.skips_rows = skips_rows;
  return k;
}

LoadReport ReportBuilder::finish(int64_t rows) {
  LoadReport r;
  r.rows = rows;
  for (auto& k : kinds_) {
    if (k.skips_rows) r.skipped += k.count;
    std::string line = k.skips_rows ? fmt::format("{} row{} skipped: {}", k.count, k.count == 1 ? "" : "s", k.what)
                                    : fmt::format("{} x {}", k.count, k.what);
    if (!k.examples.empty()) {
      line += " (e.g. ";
      for (size_t i = 0; i < k.examples.size(); ++i) line += (i ? "; " : "") + k.examples[i];
      line += ")";
    }
    r.problems.push_back(std::move(line));
  }
  r.kinds = std::move(kinds_);
  kinds_.clear();
  return r;
}

// ---- paths --------------------------------------------------------------------------------------

std::string join_path(std::string_view a, std::string_view b) {
  if (a.empty() || (!b.empty() && b.front() == '/')) return std::string(b);
  std::string s(a);
  if (s.back() != '/') s.push_back('/');
  s.append(b);
  return s;
}

std::string dir_name(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return "";
  std::string_view head = path.substr(0, slash + 1);
  // Strip trailing slashes unless the head is all slashes (Python's posixpath.dirname).
  if (head.find_first_not_of('/') != std::string_view::npos)
    while (!head.empty() && head.back() == '/') head.remove_suffix(1);
  return std::string(head);
}

std::string base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<uint8_t> files_exist(const std::vector<const std::string*>& paths) {
  std::vector<uint8_t> ok(paths.size(), 0);
  // stat is I/O-bound on a cold cache (COCO train: 118k files), so spread it over the threads.
  parallel_for(static_cast<int64_t>(paths.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ok[i] = is_regular_file(*paths[i]) ? 1 : 0;
  }, 256);
  return ok;
}

std::string extension_lower(std::string_view path) {
  std::string base = base_name(path);
  size_t dot = base.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  std::string ext = base.substr(dot);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string describe_value(const nlohmann::json& v) {
  using t = nlohmann::json::value_t;
  const char* kind = "a value";
  switch (v.type()) {
    case t::null: return "null";
    case t::boolean: kind = "a boolean"; break;
    case t::number_integer:
    case t::number_unsigned: kind = "an integer"; break;
    case t::number_float: kind = "a float"; break;
    case t::string: kind = "a string"; break;
    case t::array: kind = "an array"; break;
    case t::object: kind = "an object"; break;
    default: break;
  }
  std::string s = json_text(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return fmt::format("{} {}", kind, s);
}

nlohmann::json parse_json_file(const std::string& path, const std::string& text) {
  nlohmann::json j;
  std::string msg;
  if (try_parse_json(text, &j, &msg)) return j;
  // nlohmann's message: "[json.exception.parse_error.101] parse error at line 83, column 85: ..."
  if (size_t p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
  if (msg.size() > 300) msg = msg.substr(0, 297) + "...";  // "last read: ..." can quote a long token
  fail("{}: not valid JSON ({})", path, msg);
}

bool looks_like_json_lines(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json first;
    return try_parse_json(line, &first) && first.is_object();
  }
  return false;
}

}  // namespace detail

// ---- dataset ------------------------------------------------------------------------------------

std::vector<int64_t> CaptionDataset::unique_images() const {
  std::vector<int64_t> first;
  std::unordered_set<std::string_view> seen;
  seen.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    if (seen.insert(rows[i].image_path).second) first.push_back(static_cast<int64_t>(i));
  return first;
}

std::string normalize_split(const std::string& split) {
  std::string s = split;
  if (s.size() > 4 && s.ends_with("2017")) s.resize(s.size() - 4);
  if (s == "validation") s = "val";
  return s;
}

void require_rows(const CaptionDataset& ds, const std::string& purpose) {
  if (!ds.rows.empty()) return;
  const std::string& where = ds.source.empty() ? ds.root : ds.source;
  if (ds.report.skipped > 0)
    fail("{}: no usable caption rows, every row was skipped ({}) -- nothing to {}", where,
         ds.report.summary(), purpose);
  fail("{}: no caption rows (empty annotation list / table) -- nothing to {}", where, purpose);
}

CaptionDataset load_coco(const std::string& root, const std::string& split, bool check_images_exist) {
  if (!detail::is_directory(root)) fail("{}: COCO dataset folder does not exist", root);
  std::string s = normalize_split(split);
  if (s.empty()) fail("{}: empty split name (use train or val)", root);
  std::string ann = detail::join_path(detail::join_path(root, "annotations"), fmt::format("captions_{}2017.json", s));
  if (!detail::is_regular_file(ann))
    fail("{}: no captions file for split '{}' (COCO 2017 layout expects annotations/captions_{{train,val}}2017.json)",
         ann, split);
  CaptionDataset ds = load_coco_annotations(ann, detail::join_path(root, s + "2017"), check_images_exist);
  ds.root = root;
  ds.split = s;
  return ds;
}

CaptionDataset load_coco_annotations(const std::string& annotations_json, const std::string& image_dir,
                                     bool check_images_exist) {
  if (!detail::is_regular_file(annotations_json)) fail("{}: annotation file does not exist", annotations_json);
  std::string text = read_file(annotations_json);
  detail::CocoParseResult parsed = detail::parse_coco(annotations_json, text);
  text.clear();
  text.shrink_to_fit();
  return detail::coco_rows(parsed, annotations_json, image_dir, check_images_exist);
}

namespace {

// Image folder for a COCO captions file given directly: <root>/annotations/captions_X.json ->
// <root>/X (COCO layout), otherwise the file's own folder.
std::string coco_image_dir_for(const std::string& json_path, const std::string& split) {
  std::string dir = detail::dir_name(json_path);
  std::string base = detail::base_name(json_path);
  if (detail::base_name(dir) == "annotations" && base.starts_with("captions_") && base.ends_with(".json")) {
    std::string x = base.substr(9, base.size() - 9 - 5);
    return detail::join_path(detail::dir_name(dir), x);
  }
  if (detail::base_name(dir) == "annotations" && !split.empty())
    return detail::join_path(detail::dir_name(dir), normalize_split(split) + "2017");
  return dir;
}

}  // namespace

CaptionDataset load_captions(const std::string& path_or_root, const std::string& split, bool check_images_exist,
                             const std::string& caption_key) {
  const std::string& p = path_or_root;
  if (is_shard_spec(p)) return load_shard_captions(p, caption_key);  // taken whole, as a table
  if (detail::is_directory(p)) {
    if (!detail::is_directory(detail::join_path(p, "annotations")))
      fail("{}: not a COCO 2017 folder (no annotations/ subfolder); pass a COCO root or a .csv/.jsonl file", p);
    return load_coco(p, split, check_images_exist);
  }
  if (!detail::is_regular_file(p)) fail("{}: dataset file or folder does not exist", p);
  std::string ext = detail::extension_lower(p);
  if (ext == ".json") {
    std::string text = read_file(p);
    detail::CocoParseResult parsed = detail::parse_coco(p, text);
    if (parsed.kind == detail::CocoParseResult::kInvalidJson) {
      // Not one JSON document: JSON Lines if its first line is a record, else really broken.
      if (detail::looks_like_json_lines(text)) return load_caption_table(p, "image_path", "caption", check_images_exist);
      throw Error(parsed.error);
    }
    if (parsed.kind == detail::CocoParseResult::kCoco) {
      text.clear();
      text.shrink_to_fit();
      std::string split_from_name;
      if (std::string b = detail::base_name(p); b.starts_with("captions_") && b.ends_with(".json"))
        split_from_name = normalize_split(b.substr(9, b.size() - 14));
      CaptionDataset ds = detail::coco_rows(parsed, p, coco_image_dir_for(p, split), check_images_exist);
      // The split is known from captions_X.json, or from the caller when the file sits in annotations/.
      bool in_annotations = detail::base_name(detail::dir_name(p)) == "annotations";
      ds.split = !split_from_name.empty() ? split_from_name : in_annotations ? normalize_split(split) : "";
      return ds;
    }
    nlohmann::json doc = detail::parse_json_file(p, text);  // parse_coco may have stopped at a top-level '['
    return detail::table_from_json(doc, p, "image_path", "caption", check_images_exist);
  }
  if (ext == ".csv" || ext == ".tsv" || ext == ".jsonl")
    return load_caption_table(p, "image_path", "caption", check_images_exist);
  fail("{}: unknown dataset format '{}' (expected a COCO folder, .csv, .tsv, .jsonl or .json)", p, ext);
}

}  // namespace clipkit::dataset
