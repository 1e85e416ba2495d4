// A model with its tokenizer and image preprocessing: texts, pixel tensors or image files in,
// embeddings out. The CLI, server and trainer all embed through this.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/progress.h"
#include "image/preprocess.h"
#include "model/clip_model.h"
#include "pipeline/pass_cache.h"
#include "text/tokenizer.h"

namespace clipkit::pipeline {

struct EmbedOptions {
  int batch_size = 32;
  bool normalize = true;  // false = exactly HF get_image_features / get_text_features
  image::DecodeOptions decode;
  // Texts: > 0 truncates token ids to this many (special tokens included), as tokenizer(...,
  // truncation=True, max_length=N) does; 0 = the model's limit. A RoBERTa tower fine-tuned with
  // run_clip's --max-seq-length 128 embeds as trained with 128.
  int64_t max_text_tokens = 0;
};

struct SkippedInput {
  std::string source, reason;
};

class Embedder {
 public:
  // model: a folder, a hub id in the local Hugging Face cache, or a cache folder (io/model_location.h)
  static std::unique_ptr<Embedder> load(const std::string& model, const model::LoadOptions& o = {});

  const model::ClipModel& model() const { return *model_; }
  model::ClipModel& model() { return *model_; }  // training
  const text::Tokenizer& tokenizer() const;                 // throws if the folder has no tokenizer files
  const image::PreprocessConfig& preprocess_config() const { return pre_; }
  // Which CLIPImageProcessor to reproduce for every image this embedder preprocesses (pil unless
  // set). Throws Error naming the model's preprocessor_config.json when the backend cannot
  // reproduce it.
  void set_image_backend(image::ImageBackend b);
  int64_t dim() const { return model_->embed_dim(); }
  int64_t max_text_tokens() const;

  // Token ids for texts (special tokens, truncated to the model's length), padded to the batch's longest.
  // max_tokens > 0 truncates further (run_clip's --max-seq-length).
  void tokenize(const std::vector<std::string>& texts, std::vector<int32_t>* ids, std::vector<int32_t>* mask,
                int64_t* L, int64_t max_tokens = 0) const;
  Tensor embed_texts(const std::vector<std::string>& texts, const EmbedOptions& o, Progress* p = nullptr) const;
  // pixels [N, 3, S, S] float32, already preprocessed
  Tensor embed_pixels(const float* pixels, int64_t N, const EmbedOptions& o, Progress* p = nullptr) const;
  // Decodes + preprocesses (threaded) and embeds; unreadable files go to `skipped`, and `kept`
  // lists the input index of each output row.
  Tensor embed_image_files(const std::vector<std::string>& paths, const EmbedOptions& o, std::vector<int64_t>* kept,
                           std::vector<SkippedInput>* skipped, Progress* p = nullptr) const;

 private:
  // image_features, through a captured pass for small batches (pass_cache.h): the batch is copied
  // into that batch size's staging buffer and the result taken from its slot.
  Tensor image_batch(const float* pixels, int64_t n) const;
  struct SmallBatch {
    std::shared_ptr<void> pixels;  // Backend::host_buffer
    Tensor out;
  };
  mutable std::mutex small_mu_;
  mutable std::map<int64_t, SmallBatch> small_;
  mutable std::unique_ptr<PassCache> passes_;

  std::unique_ptr<model::ClipModel> model_;
  std::unique_ptr<text::Tokenizer> tok_;
  std::string tok_error_;
  image::PreprocessConfig pre_;
};

// Concatenates row blocks [n_i, D] into one [sum n_i, D] tensor.
Tensor concat_rows(const std::vector<Tensor>& parts, int64_t D);

}  // namespace clipkit::pipeline
