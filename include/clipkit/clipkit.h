// clipkit's public C++ API: load a CLIP model (a folder, or a Hugging Face hub id from the local
// cache), embed images and texts, tokenize and preprocess exactly as Hugging Face transformers
// does, and open and search an index built by `clipkit index build`. A small, stable surface over
// the library (pimpl: no internal headers, no third-party types); every function throws
// clipkit::Error (clipkit/error.h) on bad input, with a message naming the file and the problem.
//
// CMake:       find_package(clipkit REQUIRED)  ... target_link_libraries(app PRIVATE clipkit::clipkit)
// pkg-config:  c++ -std=c++20 app.cpp $(pkg-config --cflags --libs clipkit)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "clipkit/error.h"

namespace clipkit {

std::string CLIPKIT_API version();  // "0.1.0"

// Row-major float32 matrix: rows x dim.
struct Embeddings {
  int64_t rows = 0, dim = 0;
  std::vector<float> data;
  const float* row(int64_t i) const { return data.data() + i * dim; }
};

struct SkippedFile {
  std::string path, reason;
};

struct ModelOptions {
  int threads = 0;        // compute threads for the whole process (0 = all cores)
  bool bf16 = false;      // bf16 matmuls with fp32 accumulation (embeddings at cosine >= 0.9999)
  int batch_size = 32;    // images or texts per model batch
  bool normalize = true;  // L2-normalized rows; false = exactly HF get_image_features / get_text_features
};

class CLIPKIT_API Model {
 public:
  // model: a folder (as save_pretrained writes it), a hub id "org/name" or "org/name@revision"
  // found in the local Hugging Face cache (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub), or a
  // cache folder "models--org--name". Nothing is downloaded.
  static Model load(const std::string& model, const ModelOptions& options = {});
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  std::string folder() const;        // the folder it was loaded from (a snapshot for hub ids)
  std::string architecture() const;  // e.g. "CLIPModel (ViT-B/32 + CLIP text)"
  int64_t dim() const;               // embedding size
  int image_size() const;            // the vision tower's input side (0 without one)
  float logit_scale() const;         // exp() of it multiplies cosines into CLIP's logits

  Embeddings embed_texts(const std::vector<std::string>& texts) const;
  // Decodes (JPEG, PNG, WebP, GIF, BMP) and preprocesses each file; unreadable files are left out
  // of the rows and listed in *skipped (when given; otherwise the first one throws).
  Embeddings embed_images(const std::vector<std::string>& paths, std::vector<SkippedFile>* skipped = nullptr) const;
  // Already preprocessed pixels: n x 3 x image_size() x image_size(), float32.
  Embeddings embed_pixels(const std::vector<float>& pixels, int64_t n) const;

  // Token ids as HF's tokenizer(text) gives them (start/end tokens, no padding, no truncation).
  std::vector<std::vector<int32_t>> tokenize(const std::vector<std::string>& texts) const;
  // One image as CLIPImageProcessor preprocesses it: 3 x image_size() x image_size() float32.
  std::vector<float> preprocess(const std::string& image_path) const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class Index;
};

struct SearchFilter {
  std::string split;   // only images of this split ("train", "val"); "" = any
  std::string folder;  // only images under this folder (absolute, or relative to the indexed root)
};

struct SearchHit {
  int64_t id = -1;
  float score = 0;  // cosine similarity
  std::string path, split;
  std::vector<std::string> captions;
  std::string metadata_json;  // the whole record as JSON (as `clipkit search --json` prints it)
};

class CLIPKIT_API Index {
 public:
  // A folder written by `clipkit index build`.
  static Index open(const std::string& dir);
  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  int64_t size() const;
  int64_t dim() const;
  std::string model_folder() const;  // the model that built it

  // query: dim() floats, L2-normalized. Best first.
  std::vector<SearchHit> search(const float* query, int64_t k, const SearchFilter& filter = {}) const;
  // Embeds the text with `model` (which must be the index's model) and searches.
  std::vector<SearchHit> search_text(const Model& model, const std::string& text, int64_t k,
                                     const SearchFilter& filter = {}) const;

 private:
  struct Impl;
  explicit Index(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipkit
