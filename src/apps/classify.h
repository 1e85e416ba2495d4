// Zero-shot classification: CLIP's prompt ensembling (every label embedded through every template,
// the normalized embeddings averaged and renormalized), single-label softmax with the model's logit
// scale, and multi-label scoring with per-label thresholds (each label against a "something else"
// prompt built from the same templates: p = sigmoid(scale * (cos_label - cos_other))).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "apps/encoder.h"
#include "core/tensor.h"

namespace clipkit::apps {

struct ZeroShotOptions {
  std::vector<std::string> templates = {"a photo of a {}."};
  bool multi_label = false;
  double threshold = 0.5;                         // multi-label: default per-label threshold on p
  std::map<std::string, double> label_thresholds;  // multi-label: overrides by label
  std::string other = "something else";            // multi-label: what each label competes against
};

// Replaces every "{}" in tmpl with label; throws if tmpl has no "{}".
std::string fill_template(const std::string& tmpl, const std::string& label);

// [L, D]: for each label the renormalized mean of its normalized template embeddings.
Tensor ensemble_label_embeddings(const Encoder& enc, const std::vector<std::string>& labels,
                                 const std::vector<std::string>& templates);

struct ClassScores {
  std::vector<double> cosine;  // per label
  std::vector<double> scores;  // per label: softmax (single-label, sums to 1) or sigmoid (multi-label)
  std::vector<int> chosen;     // single-label: {argmax}; multi-label: labels with score >= threshold, best first
};

class ZeroShotClassifier {
 public:
  // Embeds the label prompts (and, for multi-label, the "other" prompt) through enc.
  ZeroShotClassifier(const Encoder& enc, std::vector<std::string> labels, ZeroShotOptions o);
  // From ready label embeddings [L, D] (rows normalized); other_emb [D] is needed for multi-label.
  ZeroShotClassifier(Tensor label_emb, std::vector<float> other_emb, float logit_scale, std::vector<std::string> labels,
                     ZeroShotOptions o);

  const std::vector<std::string>& labels() const { return labels_; }
  const Tensor& label_embeddings() const { return label_emb_; }
  float logit_scale() const { return scale_; }
  const ZeroShotOptions& options() const { return o_; }
  double threshold_for(int label) const;

  ClassScores classify(const float* image_emb) const;  // one normalized row [D]
  std::vector<ClassScores> classify(const Tensor& image_emb) const;  // [N, D]

 private:
  void check() const;
  std::vector<std::string> labels_;
  ZeroShotOptions o_;
  Tensor label_emb_;
  std::vector<float> other_;
  float scale_ = 100.f;
};

// Labels from "a,b,c" (trimmed; empty entries dropped; "\," keeps a comma) and from a file (one per
// line; blank lines and '#' comments skipped; "label<TAB>threshold" sets a per-label threshold).
std::vector<std::string> parse_label_list(const std::string& csv);
std::vector<std::string> read_label_file(const std::string& path, std::map<std::string, double>* thresholds);

// A folder-per-class dataset: DIR/<class>/*.jpg. Class names are folder names with '_' as spaces.
struct LabelledImages {
  std::vector<std::string> classes;  // sorted folder order
  std::vector<std::string> paths;
  std::vector<int> truth;  // index into classes, per path
};
LabelledImages list_class_folders(const std::string& dir);

struct ClassEval {
  std::string label;
  int64_t n = 0, correct = 0, predicted = 0;  // predicted: how often it was chosen
  double accuracy = 0, precision = 0;
};
struct EvalResult {
  int64_t images = 0, correct = 0;
  double accuracy = 0;
  std::vector<ClassEval> classes;
  std::vector<std::vector<int64_t>> confusion;  // [truth][predicted]
};
// preds: the predicted label index per image (-1 = none)
EvalResult evaluate(const std::vector<int>& truth, const std::vector<int>& preds, const std::vector<std::string>& labels);

}  // namespace clipkit::apps
