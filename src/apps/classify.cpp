#include "apps/classify.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "apps/dedup.h"
#include "apps/similarity.h"
#include "core/error.h"
#include "model/clip_model.h"

namespace clipkit::apps {
namespace fs = std::filesystem;

std::string fill_template(const std::string& t, const std::string& label) {
  if (t.find("{}") == std::string::npos) fail("template \"{}\" has no {{}} where the label goes", t);
  std::string out;
  size_t i = 0;
  for (size_t p; (p = t.find("{}", i)) != std::string::npos; i = p + 2) out += t.substr(i, p - i) + label;
  return out + t.substr(i);
}

Tensor ensemble_label_embeddings(const Encoder& enc, const std::vector<std::string>& labels,
                                 const std::vector<std::string>& templates) {
  if (templates.empty()) fail("zero-shot: no templates");
  const int64_t L = static_cast<int64_t>(labels.size()), T = static_cast<int64_t>(templates.size()), D = enc.dim();
  std::vector<std::string> prompts;
  for (auto& l : labels)
    for (auto& t : templates) prompts.push_back(fill_template(t, l));
  Tensor e = enc.encode_texts(prompts);  // [L*T, D] normalized
  Tensor out = Tensor::zeros(DType::F32, {L, D});
  for (int64_t l = 0; l < L; ++l) {
    float* o = out.ptr<float>() + l * D;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) o[d] += e.ptr<float>()[(l * T + t) * D + d];
  }
  model::l2_normalize_rows(out.ptr<float>(), L, D);
  return out;
}

ZeroShotClassifier::ZeroShotClassifier(const Encoder& enc, std::vector<std::string> labels, ZeroShotOptions o)
    : labels_(std::move(labels)), o_(std::move(o)), scale_(enc.logit_scale()) {
  if (labels_.empty()) fail("zero-shot: no labels given");
  label_emb_ = ensemble_label_embeddings(enc, labels_, o_.templates);
  if (o_.multi_label) {
    Tensor oth = ensemble_label_embeddings(enc, {o_.other}, o_.templates);
    other_.assign(oth.ptr<float>(), oth.ptr<float>() + enc.dim());
  }
  check();
}

ZeroShotClassifier::ZeroShotClassifier(Tensor label_emb, std::vector<float> other_emb, float logit_scale,
                                       std::vector<std::string> labels, ZeroShotOptions o)
    : labels_(std::move(labels)), o_(std::move(o)), label_emb_(std::move(label_emb)), other_(std::move(other_emb)),
      scale_(logit_scale) {
  check();
}

void ZeroShotClassifier::check() const {
  if (labels_.empty()) fail("zero-shot: no labels given");
  if (label_emb_.shape.size() != 2 || label_emb_.dim(0) != static_cast<int64_t>(labels_.size()))
    fail("zero-shot: label embeddings have shape {} for {} labels", shape_str(label_emb_.shape), labels_.size());
  if (o_.multi_label && static_cast<int64_t>(other_.size()) != label_emb_.dim(1))
    fail("zero-shot: multi-label needs the \"other\" embedding of size {}", label_emb_.dim(1));
  for (auto& [l, t] : o_.label_thresholds)
    if (std::find(labels_.begin(), labels_.end(), l) == labels_.end())
      fail("zero-shot: threshold given for \"{}\", which is not one of the labels", l);
}

double ZeroShotClassifier::threshold_for(int label) const {
  auto it = o_.label_thresholds.find(labels_[static_cast<size_t>(label)]);
  return it == o_.label_thresholds.end() ? o_.threshold : it->second;
}

ClassScores ZeroShotClassifier::classify(const float* x) const {
  const int64_t L = label_emb_.dim(0), D = label_emb_.dim(1);
  ClassScores r;
  for (int64_t l = 0; l < L; ++l) r.cosine.push_back(dot_exact(x, label_emb_.ptr<float>() + l * D, D));
  std::vector<int> order(static_cast<size_t>(L));
  std::iota(order.begin(), order.end(), 0);
  if (!o_.multi_label) {
    double mx = *std::max_element(r.cosine.begin(), r.cosine.end()), sum = 0;
    for (double c : r.cosine) sum += std::exp(scale_ * (c - mx));
    for (double c : r.cosine) r.scores.push_back(std::exp(scale_ * (c - mx)) / sum);
    r.chosen.push_back(static_cast<int>(std::max_element(r.scores.begin(), r.scores.end()) - r.scores.begin()));
  } else {
    const double co = dot_exact(x, other_.data(), D);
    for (double c : r.cosine) r.scores.push_back(1.0 / (1.0 + std::exp(-scale_ * (c - co))));
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r.scores[a] > r.scores[b]; });
    for (int l : order)
      if (r.scores[static_cast<size_t>(l)] >= threshold_for(l)) r.chosen.push_back(l);
  }
  return r;
}

std::vector<ClassScores> ZeroShotClassifier::classify(const Tensor& emb) const {
  if (emb.shape.size() != 2 || emb.dim(1) != label_emb_.dim(1))
    fail("zero-shot: image embeddings have shape {}, expected [N, {}]", shape_str(emb.shape), label_emb_.dim(1));
  std::vector<ClassScores> out;
  for (int64_t i = 0; i < emb.dim(0); ++i) out.push_back(classify(emb.ptr<float>() + i * emb.dim(1)));
  return out;
}

namespace {
std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
}  // namespace

std::vector<std::string> parse_label_list(const std::string& csv) {
  std::vector<std::string> out;
  std::string cur;
  auto push = [&] {
    std::string t = trim(cur);
    if (!t.empty()) out.push_back(t);
    cur.clear();
  };
  for (size_t i = 0; i < csv.size(); ++i) {
    if (csv[i] == '\\' && i + 1 < csv.size() && csv[i + 1] == ',') cur += csv[++i];
    else if (csv[i] == ',') push();
    else cur += csv[i];
  }
  push();
  return out;
}

std::vector<std::string> read_label_file(const std::string& path, std::map<std::string, double>* thresholds) {
  std::ifstream f(path);
  if (!f) fail("{}: cannot open the labels file", path);
  std::vector<std::string> out;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto tab = t.find('\t');
    if (tab != std::string::npos) {
      std::string label = trim(t.substr(0, tab)), thr = trim(t.substr(tab + 1));
      char* end = nullptr;
      double v = std::strtod(thr.c_str(), &end);
      if (thr.empty() || *end != '\0' || !(v >= 0 && v <= 1))
        fail("{}:{}: threshold \"{}\" is not a number in [0, 1]", path, n, thr);
      if (thresholds) (*thresholds)[label] = v;
      t = label;
    }
    out.push_back(t);
  }
  if (out.empty()) fail("{}: no labels in the file", path);
  return out;
}

LabelledImages list_class_folders(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory (expected one sub-folder per class)", dir);
  std::vector<std::string> folders;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) folders.push_back(e.path().filename().string());
  std::sort(folders.begin(), folders.end());
  LabelledImages r;
  for (auto& f : folders) {
    auto files = list_image_files((fs::path(dir) / f).string());
    if (files.empty()) continue;
    std::string label = f;
    std::replace(label.begin(), label.end(), '_', ' ');
    r.classes.push_back(label);
    for (auto& p : files) {
      r.paths.push_back(p);
      r.truth.push_back(static_cast<int>(r.classes.size()) - 1);
    }
  }
  if (r.classes.size() < 2) fail("{}: need at least 2 class folders with images, found {}", dir, r.classes.size());
  return r;
}

EvalResult evaluate(const std::vector<int>& truth, const std::vector<int>& preds, const std::vector<std::string>& labels) {
  if (truth.size() != preds.size()) fail("evaluate: {} labels for {} predictions", truth.size(), preds.size());
  const size_t L = labels.size();
  EvalResult r;
  r.confusion.assign(L, std::vector<int64_t>(L, 0));
  r.classes.resize(L);
  for (size_t l = 0; l < L; ++l) r.classes[l].label = labels[l];
  for (size_t i = 0; i < truth.size(); ++i) {
    const int t = truth[i], p = preds[i];
    if (t < 0 || static_cast<size_t>(t) >= L) fail("evaluate: truth label {} out of range", t);
    r.images++;
    r.classes[static_cast<size_t>(t)].n++;
    if (p >= 0 && static_cast<size_t>(p) < L) {
      r.confusion[static_cast<size_t>(t)][static_cast<size_t>(p)]++;
      r.classes[static_cast<size_t>(p)].predicted++;
    }
    if (p == t) {
      r.correct++;
      r.classes[static_cast<size_t>(t)].correct++;
    }
  }
  r.accuracy = r.images ? double(r.correct) / double(r.images) : 0;
  for (auto& c : r.classes) {
    c.accuracy = c.n ? double(c.correct) / double(c.n) : 0;
    c.precision = c.predicted ? double(c.correct) / double(c.predicted) : 0;
  }
  return r;
}

}  // namespace clipkit::apps
