// clipkit_example MODEL IMAGE... [--index DIR]: the public API end to end -- load a model (a folder
// or a hub id from the local Hugging Face cache), tokenize, preprocess, embed images and captions,
// print the zero-shot table, and with --index search an index by text.
#include <clipkit/clipkit.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL IMAGE... [--index DIR]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> images;
  std::string index_dir;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--index" && i + 1 < argc) index_dir = argv[++i];
    else images.push_back(argv[i]);
  }
  try {
    std::printf("clipkit %s\n", clipkit::version().c_str());
    clipkit::Model model = clipkit::Model::load(argv[1]);
    std::printf("model %s: %s, dim %lld\n", model.folder().c_str(), model.architecture().c_str(),
                static_cast<long long>(model.dim()));
    const std::vector<std::string> labels = {"a photo of a cat", "a photo of a dog", "a diagram"};
    auto ids = model.tokenize({labels[0]});
    std::printf("tokens of \"%s\": %zu ids, first %d last %d\n", labels[0].c_str(), ids[0].size(), ids[0].front(),
                ids[0].back());
    auto pixels = model.preprocess(images[0]);
    std::printf("preprocessed %s: %zu floats\n", images[0].c_str(), pixels.size());
    std::vector<clipkit::SkippedFile> skipped;
    clipkit::Embeddings im = model.embed_images(images, &skipped);
    clipkit::Embeddings tx = model.embed_texts(labels);
    for (auto& s : skipped) std::printf("skipped %s\n", s.reason.c_str());
    const double scale = std::exp(model.logit_scale());
    for (int64_t i = 0; i < im.rows; ++i) {
      std::vector<double> logits;
      double mx = -1e30, sum = 0;
      for (int64_t t = 0; t < tx.rows; ++t) {
        double c = 0;
        for (int64_t d = 0; d < im.dim; ++d) c += double(im.row(i)[d]) * tx.row(t)[d];
        logits.push_back(scale * c);
        mx = std::max(mx, scale * c);
      }
      for (double l : logits) sum += std::exp(l - mx);
      std::printf("image %lld:", static_cast<long long>(i));
      for (size_t t = 0; t < logits.size(); ++t) std::printf("  %s %.3f", labels[t].c_str(), std::exp(logits[t] - mx) / sum);
      std::printf("\n");
    }
    // the same row from preprocessed pixels
    clipkit::Embeddings px = model.embed_pixels(pixels, 1);
    double diff = 0;
    for (int64_t d = 0; d < px.dim; ++d) diff = std::max(diff, std::fabs(double(px.row(0)[d]) - im.row(0)[d]));
    std::printf("embed_pixels vs embed_images: max abs diff %.2g\n", diff);
    if (!index_dir.empty()) {
      clipkit::Index index = clipkit::Index::open(index_dir);
      std::printf("index %s: %lld images\n", index_dir.c_str(), static_cast<long long>(index.size()));
      for (auto& h : index.search_text(model, "a red circle", 3))
        std::printf("  %.4f %s %s\n", h.score, h.path.c_str(), h.captions.empty() ? "" : h.captions[0].c_str());
    }
    try {
      clipkit::Model::load("/nonexistent/model");
    } catch (const clipkit::Error& e) {
      std::printf("errors are clipkit::Error: %s\n", e.what());
    }
  } catch (const clipkit::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
