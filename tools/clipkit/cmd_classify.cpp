// clipkit classify --model DIR (--labels "a,b,c" | --labels-file F) [--template T ...]
//                  [--multi-label [--threshold T] [--label-threshold LABEL=T ...]] [--json] IMAGES...
// clipkit classify --model DIR --eval DIR [--labels ...] [--json]
// (images as arguments, --images FILE..., or --folder DIR)
// Zero-shot classification with prompt ensembling. Default output is CSV (path, one score column
// per label, chosen labels); --json prints one object per image {"path", "scores", "labels"}.
// --eval takes a folder-per-class dataset and reports accuracy and a per-class table.
#include <nlohmann/json.hpp>

#include "apps/classify.h"
#include "apps/dedup.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, labels, labels_file, eval, folder, other = "something else";
  std::vector<std::string> templates, label_thresholds, images, image_flags;
  bool multi = false, json = false;
  double threshold = 0.5;
  ComputeOptions compute;
  std::string image_backend = "pil";
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model);
  app.add_option("--labels", o->labels, "comma-separated labels (\\, for a comma inside one)");
  app.add_option("--labels-file", o->labels_file, "labels, one per line (LABEL<TAB>THRESHOLD sets its threshold)");
  app.add_option("--template", o->templates, "prompt template with {} for the label (repeatable: ensembled; default: the 18-prompt CLIP ensemble)")
      ->allow_extra_args(false)->default_str("");
  app.add_flag("--multi-label", o->multi, "score each label on its own (vs --other) and keep those over threshold");
  add_number_flag(app, "--threshold", o->threshold, "multi-label: default per-label threshold", 0, 1);
  app.add_option("--label-threshold", o->label_thresholds, "multi-label: LABEL=T for one label (repeatable)")
      ->allow_extra_args(false)->default_str("");
  app.add_option("--other", o->other, "multi-label: what each label is scored against");
  app.add_option("--eval", o->eval, "folder-per-class dataset to evaluate on (labels = folder names)");
  add_json_flag(app, o->json, "JSON output (one object per image, or the eval summary)");
  app.add_option("files", o->images, "image files")->default_str("");
  add_images_flag(app, o->image_flags);
  add_folder_flag(app, o->folder, "classify every image in this folder (recursive)");
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    if (!o->labels.empty() && !o->labels_file.empty()) fail("give --labels or --labels-file, not both");
    o->images.insert(o->images.end(), o->image_flags.begin(), o->image_flags.end());
    if (!o->folder.empty())
      for (auto& p : apps::list_image_files(o->folder)) o->images.push_back(p);
    if (o->eval.empty() && o->images.empty()) fail("no images given (image files, --folder DIR, or --eval DIR)");
    if (!o->eval.empty() && !o->images.empty()) fail("--eval takes a dataset folder; don't also list images");
    apps::ZeroShotOptions zo;
    if (!o->templates.empty()) zo.templates = o->templates;
    zo.multi_label = o->multi;
    zo.threshold = o->threshold;
    zo.other = o->other;
    std::vector<std::string> labels;
    if (!o->labels_file.empty()) labels = apps::read_label_file(o->labels_file, &zo.label_thresholds);
    else if (!o->labels.empty()) labels = apps::parse_label_list(o->labels);
    for (auto& lt : o->label_thresholds) {
      auto eq = lt.rfind('=');
      double v = -1;
      if (eq != std::string::npos) {
        char* end = nullptr;
        v = std::strtod(lt.c_str() + eq + 1, &end);
        if (*end != '\0') v = -1;
      }
      if (eq == std::string::npos || eq == 0 || !(v >= 0 && v <= 1))
        fail("--label-threshold \"{}\": expected LABEL=T with T in [0, 1]", lt);
      zo.label_thresholds[lt.substr(0, eq)] = v;
    }
    if (!zo.label_thresholds.empty() && !zo.multi_label) fail("per-label thresholds need --multi-label");
    apps::LabelledImages ds;
    std::vector<std::string> paths = o->images;
    if (!o->eval.empty()) {
      ds = apps::list_class_folders(o->eval);
      if (labels.empty()) labels = ds.classes;
      else if (labels.size() != ds.classes.size())
        fail("--labels has {} labels but {} has {} class folders", labels.size(), o->eval, ds.classes.size());
      paths = ds.paths;
    }
    if (labels.empty()) fail("no labels: give --labels or --labels-file");
    auto emb = pipeline::Embedder::load(o->model, load_options(o->compute));
    emb->set_image_backend(image_backend(o->image_backend));
    apps::EmbedderEncoder enc(*emb, o->compute.batch_size);
    apps::ZeroShotClassifier clf(enc, labels, zo);
    pipeline::EmbedOptions eo;
    eo.batch_size = o->compute.batch_size;
    std::vector<int64_t> kept;
    std::vector<pipeline::SkippedInput> skipped;
    Progress p("classify", static_cast<int64_t>(paths.size()), "images");
    Tensor x = emb->embed_image_files(paths, eo, &kept, &skipped, &p);
    p.finish();
    for (auto& s : skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
    auto res = kept.empty() ? std::vector<apps::ClassScores>{} : clf.classify(x);
    if (!o->eval.empty()) {
      std::vector<int> truth, pred;
      for (size_t r = 0; r < kept.size(); ++r) {
        truth.push_back(ds.truth[static_cast<size_t>(kept[r])]);
        pred.push_back(res[r].chosen.empty() ? -1 : res[r].chosen[0]);
      }
      auto ev = apps::evaluate(truth, pred, labels);
      if (o->json) {
        nlohmann::json cls = nlohmann::json::array();
        for (auto& c : ev.classes)
          cls.push_back({{"label", c.label}, {"n", c.n}, {"correct", c.correct}, {"accuracy", c.accuracy},
                         {"precision", c.precision}});
        std::printf("%s\n", json_text(nlohmann::json{{"accuracy", ev.accuracy}, {"images", ev.images},
                                                      {"correct", ev.correct}, {"skipped", skipped.size()},
                                                      {"classes", cls}, {"confusion", ev.confusion}})
                                 .c_str());
      } else {
        std::printf("accuracy %.4f (%lld of %lld images)\n", ev.accuracy, static_cast<long long>(ev.correct),
                    static_cast<long long>(ev.images));
        std::printf("%-30s %6s %8s %9s %9s\n", "class", "images", "correct", "accuracy", "precision");
        for (auto& c : ev.classes)
          std::printf("%-30.30s %6lld %8lld %9.4f %9.4f\n", c.label.c_str(), static_cast<long long>(c.n),
                      static_cast<long long>(c.correct), c.accuracy, c.precision);
      }
      return skipped.empty() ? kOk : kSkippedInputs;
    }
    if (!o->json) {
      std::string h = "path";
      for (auto& l : labels) h += "," + csv_field(l);
      std::printf("%s,labels\n", h.c_str());
    }
    for (size_t r = 0; r < kept.size(); ++r) {
      const std::string& path = paths[static_cast<size_t>(kept[r])];
      std::vector<std::string> chosen;
      for (int c : res[r].chosen) chosen.push_back(labels[static_cast<size_t>(c)]);
      if (o->json) {
        nlohmann::json sc = nlohmann::json::object();
        for (size_t l = 0; l < labels.size(); ++l) sc[labels[l]] = res[r].scores[l];
        std::printf("%s\n", json_text(nlohmann::json{{"path", path}, {"scores", sc}, {"labels", chosen}}).c_str());
      } else {
        std::string line = csv_field(path);
        for (double s : res[r].scores) line += fmt::format(",{:.6f}", s);
        std::string ch;
        for (auto& c : chosen) ch += (ch.empty() ? "" : ";") + c;
        std::printf("%s,%s\n", line.c_str(), csv_field(ch).c_str());
      }
    }
    return skipped.empty() ? kOk : kSkippedInputs;
  };
}

CommandRegistrar reg("classify", "Zero-shot image classification (prompt ensembles, multi-label, --eval)", setup);

}  // namespace
}  // namespace clipkit::cli
