// Retrieval for RAG: the top-k images for a text (or image) query, with metadata, captions and
// scores, filtered, as JSON ready to paste into a multimodal LLM prompt (paths, or base64 JPEG
// thumbnails as data URIs, plus an OpenAI-style "content" list of text and image parts).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/similarity.h"

namespace clipkit::apps {

struct RetrievalItem {
  std::string path;
  std::string caption;
  nlohmann::json metadata = nlohmann::json::object();  // any extra fields (split, width, ...)
};

// One filter: "key=value", "key!=value", "key~text" (contains), "key>=x", "key<=x", "key>x", "key<x".
// key is "path", "caption" or a metadata field; numeric comparisons need numbers on both sides.
struct Filter {
  std::string key, op, value;
  static Filter parse(const std::string& s);  // throws clipkit::Error on a malformed filter
  bool accepts(const RetrievalItem& it) const;
};

struct RetrieveOptions {
  int k = 5;
  double min_score = -2;  // cosine floor (default: none)
  std::vector<Filter> filters;
  bool thumbnails = false;  // embed base64 JPEG thumbnails
  int thumb_size = 224;
};

// emb [N, D] normalized rows aligned with items; q [D] normalized.
// {"query", "k", "results": [{"rank", "path", "score", "caption", "metadata", "image"?}], "content": [...]}
nlohmann::json retrieve(const std::string& query, const float* q, const std::vector<RetrievalItem>& items,
                        const float* emb, int64_t D, const RetrieveOptions& o);

struct Ranked {
  RetrievalItem item;
  double score = 0;
};
// The JSON answer for results already ranked best first (e.g. by a FAISS index); applies
// o.filters, o.min_score and o.k.
nlohmann::json format_results(const std::string& query, const std::vector<Ranked>& ranked, int64_t candidates,
                              const RetrieveOptions& o);

}  // namespace clipkit::apps
