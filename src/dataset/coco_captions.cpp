// COCO 2017 captions -> one row per caption, in annotation order, with the fields of Hugging Face's
// ydshieh/coco_dataset_script (config "2017"): the image entry's height/width/file_name/coco_url,
// caption_id = the annotation's own "id", image_path = os.path.join(image_dir, file_name).
//
// Parsed with nlohmann's SAX interface straight into compact records: at COCO train scale (92 MB,
// 592k captions) a DOM costs about twice the time (build + destroy) and ~1 GB of nodes.
#include <fmt/format.h>

#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "dataset/caption_dataset.h"
#include "dataset/dataset_internal.h"

namespace clipkit::dataset::detail {

namespace {

using json = nlohmann::json;

// One scalar field of a record as read: an integer, a string, or something else (described).
struct Value {
  enum Kind : uint8_t { kMissing, kInt, kString, kOther } kind = kMissing;
  int64_t i = 0;
  std::string s;     // kString: the text; kOther: a description ("null", "a float 1.5", "an array")
  void reset() { kind = kMissing; s.clear(); }
  std::string describe() const {
    switch (kind) {
      case kMissing: return "missing";
      case kInt: return fmt::format("an integer {}", i);
      case kString: return describe_value(json(s));
      default: return s;
    }
  }
};

enum Field : int { kId, kImageId, kCaption, kFileName, kCocoUrl, kHeight, kWidth, kNumFields, kIgnored = -1 };

Field field_of(const std::string& key) {
  switch (key.size()) {
    case 2: return key == "id" ? kId : kIgnored;
    case 5: return key == "width" ? kWidth : kIgnored;
    case 6: return key == "height" ? kHeight : kIgnored;
    case 7: return key == "caption" ? kCaption : kIgnored;
    case 8: return key == "image_id" ? kImageId : key == "coco_url" ? kCocoUrl : kIgnored;
    case 9: return key == "file_name" ? kFileName : kIgnored;
    default: return kIgnored;
  }
}

struct ImageEntry {
  int64_t id = -1;
  int height = 0, width = 0;
  std::string file_name, coco_url, image_path;
  int32_t exists_slot = -1;  // index into the existence-check list, -1 = not referenced yet
  bool inside = true;        // file_name is a relative path that stays inside the image folder
};

// A file_name that names a file under the image folder: relative, with no ".." component.
bool stays_inside(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  for (size_t b = 0; b <= name.size();) {
    size_t e = name.find('/', b);
    if (e == std::string_view::npos) e = name.size();
    if (name.substr(b, e - b) == "..") return false;
    b = e + 1;
  }
  return true;
}

struct Annotation {
  int64_t image_id = -1, id = -1;
  std::string caption;  // the caption, or for a bad record the description of what is wrong
  enum Status : uint8_t { kOk, kInvalid, kBadCaption } status = kOk;
};

// What the top level of the document held.
struct Section {
  bool present = false, is_array = false;
  std::string type;  // when present but not an array
};

class CocoSax : public json::json_sax_t {
 public:
  std::vector<ImageEntry> images;
  std::vector<std::string> invalid_images;  // examples (first few) of unusable images entries
  int64_t invalid_image_count = 0;
  std::unordered_set<int64_t> invalid_image_ids;
  std::vector<Annotation> annotations;
  Section images_section, annotations_section;
  bool top_is_object = false, stopped_not_object = false;
  std::string error;  // parse error message

  bool null() override { return other("null"); }
  bool boolean(bool b) override { return other(b ? "a boolean true" : "a boolean false"); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<number_unsigned_t>(INT64_MAX)) return other(fmt::format("an integer {} (too large)", v));
    return integer(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t& raw) override { return other("a float " + raw); }
  bool binary(binary_t&) override { return other("binary"); }
  bool string(string_t& v) override {
    if (Value* f = scalar_target()) {
      f->kind = Value::kString;
      f->s = std::move(v);
    } else {
      scalar_elsewhere(describe_value(json(v)));
    }
    return true;
  }
  bool start_object(std::size_t) override { return open(true); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      section_ = k == "images" ? 1 : k == "annotations" ? 2 : 0;
    } else if (depth_ == 3 && in_record_) {
      field_ = field_of(k);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  // Depth = number of open containers. 1: top object; 2: inside "images"/"annotations" array;
  // 3: inside one record; deeper: a nested value inside a record field (ignored but described).
  int depth_ = 0, section_ = 0, field_ = kIgnored;
  bool in_record_ = false, in_section_array_ = false;
  Value fields_[kNumFields];
  int64_t element_ = 0;

  Section& section() { return section_ == 1 ? images_section : annotations_section; }

  Value* scalar_target() {
    if (depth_ == 3 && in_record_ && field_ != kIgnored) return &fields_[field_];
    return nullptr;
  }
  // A scalar somewhere other than a record field: a top-level section value or an array element.
  void scalar_elsewhere(const std::string& what) {
    if (depth_ == 1 && section_) {
      section().present = true;
      section().type = what;
    } else if (depth_ == 2 && in_section_array_) {
      bad_element("not an object (" + what + ")");
    }
  }
  bool integer(int64_t v) {
    if (Value* f = scalar_target()) {
      f->kind = Value::kInt;
      f->i = v;
    } else {
      scalar_elsewhere(fmt::format("an integer {}", v));
    }
    return true;
  }
  bool other(std::string what) {
    if (Value* f = scalar_target()) {
      f->kind = Value::kOther;
      f->s = std::move(what);
    } else {
      scalar_elsewhere(what);
    }
    return true;
  }
  bool open(bool object) {
    if (depth_ == 0) {
      top_is_object = object;
      if (!object) {  // not a COCO file; no need to read the rest
        stopped_not_object = true;
        return false;
      }
    } else if (depth_ == 1 && section_) {
      section().present = true;
      section().is_array = !object;
      section().type = object ? "an object" : "an array";
      in_section_array_ = !object;
      element_ = 0;
    } else if (depth_ == 2 && in_section_array_) {
      if (object) {
        in_record_ = true;
        for (auto& f : fields_) f.reset();
      } else {
        bad_element("not an object (an array)");
      }
    } else if (depth_ == 3 && in_record_ && field_ != kIgnored) {
      fields_[field_].kind = Value::kOther;
      fields_[field_].s = object ? "an object" : "an array";
    }
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    if (depth_ == 2 && in_record_) {
      in_record_ = false;
      finish_record();
    } else if (depth_ == 1) {
      in_section_array_ = false;
    }
    return true;
  }
  void bad_element(const std::string& why) {
    if (section_ == 1) {
      invalid_image(fmt::format("images[{}]: {}", element_, why));
    } else {
      Annotation& a = annotations.emplace_back();
      a.status = Annotation::kInvalid;
      a.caption = why;
    }
    ++element_;
  }
  void invalid_image(std::string example) {
    if (invalid_images.size() < kMaxExamples) invalid_images.push_back(std::move(example));
    ++invalid_image_count;
  }
  void finish_record() {
    const int64_t index = element_++;
    if (section_ == 1) {
      const Value &id = fields_[kId], &fn = fields_[kFileName];
      if (id.kind != Value::kInt || fn.kind != Value::kString || fn.s.empty()) {
        if (id.kind == Value::kInt) invalid_image_ids.insert(id.i);
        invalid_image(fmt::format("images[{}]: {}", index,
                                  id.kind != Value::kInt ? "id is " + id.describe()
                                                         : "file_name is " + fn.describe()));
        return;
      }
      ImageEntry& e = images.emplace_back();
      e.id = id.i;
      e.file_name = std::move(fields_[kFileName].s);
      if (fields_[kCocoUrl].kind == Value::kString) e.coco_url = std::move(fields_[kCocoUrl].s);
      if (fields_[kHeight].kind == Value::kInt) e.height = static_cast<int>(fields_[kHeight].i);
      if (fields_[kWidth].kind == Value::kInt) e.width = static_cast<int>(fields_[kWidth].i);
    } else {
      Annotation& a = annotations.emplace_back();
      const Value &img = fields_[kImageId], &id = fields_[kId], &cap = fields_[kCaption];
      if (img.kind != Value::kInt || id.kind != Value::kInt) {
        a.status = Annotation::kInvalid;
        a.caption = img.kind != Value::kInt ? "image_id is " + img.describe() : "id is " + id.describe();
        if (id.kind == Value::kInt) a.id = id.i;
        return;
      }
      a.image_id = img.i;
      a.id = id.i;
      if (cap.kind == Value::kString) {
        a.caption = std::move(fields_[kCaption].s);
      } else {
        a.status = Annotation::kBadCaption;
        a.caption = cap.describe();
      }
    }
  }
};

std::string strip_exception_prefix(std::string msg) {
  // "[json.exception.parse_error.101] parse error at line 83, column 85: ..."
  if (size_t p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
  if (msg.size() > 300) msg = msg.substr(0, 297) + "...";  // "last read: ..." can quote a long token
  return msg;
}

}  // namespace

struct CocoDocument {
  CocoSax sax;
};

CocoParseResult parse_coco(const std::string& path, const std::string& text) {
  CocoParseResult r;
  r.doc = std::make_shared<CocoDocument>();
  CocoSax& sax = r.doc->sax;
  bool ok = sax_parse_json(text, &sax, &sax.error);
  if (!ok && sax.stopped_not_object) {
    r.kind = CocoParseResult::kNotCoco;
  } else if (!ok) {
    r.kind = CocoParseResult::kInvalidJson;
    r.error = fmt::format("{}: not valid JSON ({})", path, strip_exception_prefix(sax.error));
  } else if (!sax.images_section.present && !sax.annotations_section.present) {
    r.kind = CocoParseResult::kNotCoco;
  } else {
    r.kind = CocoParseResult::kCoco;
  }
  return r;
}

CaptionDataset coco_rows(CocoParseResult& parsed, const std::string& path, const std::string& image_dir,
                         bool check_images_exist) {
  if (parsed.kind == CocoParseResult::kInvalidJson) throw Error(parsed.error);
  CocoSax& sax = parsed.doc->sax;
  if (!sax.top_is_object) fail("{}: not a COCO captions file (the top level is not a JSON object)", path);
  const Section &ann = sax.annotations_section, &img = sax.images_section;
  if (!ann.present)
    fail("{}: no \"annotations\" key, so no captions (an image-info file such as COCO's image_info_test2017.json?)",
         path);
  if (!ann.is_array) fail("{}: \"annotations\" is {}, expected an array", path, ann.type);
  if (!img.present) fail("{}: no \"images\" key (a COCO captions file needs both images and annotations)", path);
  if (!img.is_array) fail("{}: \"images\" is {}, expected an array", path, img.type);
  if (check_images_exist && !is_directory(image_dir)) fail("{}: image folder does not exist (for {})", image_dir, path);

  ReportBuilder report;
  if (sax.invalid_image_count > 0) {
    ProblemKind& k = report.kind("invalid_image_entry", "images entry without an integer id and a file_name (ignored)",
                                 /*skips_rows=*/false);
    k.count = sax.invalid_image_count;
    k.examples = sax.invalid_images;
  }

  // images: id -> entry. A later duplicate id replaces the earlier one, as the HF script's dict does.
  std::vector<ImageEntry>& entries = sax.images;
  std::unordered_map<int64_t, int32_t> by_id;
  by_id.reserve(entries.size() * 2);
  for (size_t i = 0; i < entries.size(); ++i) {
    ImageEntry& e = entries[i];
    e.image_path = join_path(image_dir, e.file_name);
    e.inside = stays_inside(e.file_name);
    const auto inserted = by_id.try_emplace(e.id, static_cast<int32_t>(i));  // (clang 14 cannot capture a binding)
    if (!inserted.second) {
      const int32_t earlier = inserted.first->second;
      report.add("duplicate_image_id", "images entries with a repeated id (the last one is used)", [&] {
        return fmt::format("id {}: {} replaces {}", e.id, e.file_name, entries[earlier].file_name);
      }, 1, /*skips_rows=*/false);
      inserted.first->second = static_cast<int32_t>(i);
    }
  }

  // Pass 1: classify annotations; entry index of the usable ones (-1 = skipped).
  std::vector<Annotation>& anns = sax.annotations;
  std::vector<int32_t> entry_of(anns.size(), -1);
  std::vector<const std::string*> check_paths;
  for (size_t i = 0; i < anns.size(); ++i) {
    const Annotation& a = anns[i];
    if (a.status == Annotation::kInvalid) {
      report.add("invalid_record", "annotation without integer image_id and id", [&] {
        return a.id >= 0 ? fmt::format("annotation #{} (id {}): {}", i, a.id, a.caption)
                         : fmt::format("annotation #{}: {}", i, a.caption);
      });
      continue;
    }
    auto it = by_id.find(a.image_id);
    if (it == by_id.end()) {
      report.add("unknown_image_id", "annotation refers to an image_id not in \"images\"", [&] {
        return fmt::format("annotation #{} (id {}): image_id {}{}", i, a.id, a.image_id,
                           sax.invalid_image_ids.count(a.image_id) ? " has an invalid images entry" : " not in images");
      });
      continue;
    }
    if (a.status == Annotation::kBadCaption) {
      report.add("caption_not_string", "caption is not a string",
                 [&] { return fmt::format("annotation #{} (id {}): caption is {}", i, a.id, a.caption); });
      continue;
    }
    ImageEntry& e = entries[it->second];
    if (!e.inside) {
      report.add("image_outside_folder", "file_name leads outside the image folder (absolute or with \"..\")",
                 [&] { return fmt::format("annotation #{} (id {}): file_name {}", i, a.id, json_text(json(e.file_name))); });
      continue;
    }
    if (check_images_exist && e.exists_slot < 0) {
      e.exists_slot = static_cast<int32_t>(check_paths.size());
      check_paths.push_back(&e.image_path);
    }
    entry_of[i] = it->second;
  }

  // One stat per referenced image, not per caption.
  std::vector<uint8_t> exists;
  if (check_images_exist) {
    exists = files_exist(check_paths);
    for (size_t s = 0; s < check_paths.size(); ++s) {
      if (exists[s]) continue;
      ProblemKind& k = report.kind("image_file_missing", "image file missing");
      if (k.examples.size() < kMaxExamples) k.examples.push_back(*check_paths[s] + " does not exist");
    }
  }

  // Pass 2: rows in annotation order, moving the caption strings. Filled in parallel: most of the
  // cost is allocating and copying the per-row path strings (3 per row, ~600k rows for COCO train).
  std::vector<int64_t> out_of(anns.size(), -1);
  int64_t n_rows = 0, missing_rows = 0;
  for (size_t i = 0; i < anns.size(); ++i) {
    if (entry_of[i] < 0) continue;
    if (check_images_exist && !exists[entries[entry_of[i]].exists_slot]) {
      ++missing_rows;
      continue;
    }
    out_of[i] = n_rows++;
  }
  CaptionDataset ds;
  ds.root = path;
  ds.source = path;
  ds.rows.resize(static_cast<size_t>(n_rows));
  parallel_for(static_cast<int64_t>(anns.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      if (out_of[i] < 0) continue;
      const ImageEntry& im = entries[entry_of[i]];
      CaptionRow& r = ds.rows[out_of[i]];
      r.image_id = anns[i].image_id;
      r.caption_id = anns[i].id;
      r.caption = std::move(anns[i].caption);
      r.height = im.height;
      r.width = im.width;
      r.file_name = im.file_name;
      r.coco_url = im.coco_url;
      r.image_path = im.image_path;
    }
  }, 4096);
  if (missing_rows) report.kind("image_file_missing", "image file missing").count += missing_rows;
  ds.report = report.finish(static_cast<int64_t>(ds.rows.size()));
  return ds;
}

}  // namespace clipkit::dataset::detail
