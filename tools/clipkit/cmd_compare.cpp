// clipkit compare --model DIR --images F... (--text T... | --texts FILE) [--json]
// The image x text similarity table: cosine similarities and, per image, the softmax over the
// texts with the model's logit scale (what CLIPModel's logits_per_image.softmax(-1) gives).
#include <cmath>
#include <nlohmann/json.hpp>

#include "command.h"
#include "image_backend_flag.h"
#include "core/json.h"
#include "inputs.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, texts_file;
  std::vector<std::string> images, texts;
  bool json = false;
  ComputeOptions compute;
  std::string image_backend = "pil";
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model);
  add_images_flag(app, o->images)->required();
  auto* text = app.add_option("--text", o->texts, "a text (repeatable)")->default_str("");
  auto* texts = app.add_option("--texts", o->texts_file, "texts: .txt one per line or .jsonl");
  require_one_of(app, {text, texts});
  add_json_flag(app, o->json);
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    auto emb = pipeline::Embedder::load(o->model, load_options(o->compute));
    emb->set_image_backend(image_backend(o->image_backend));
    auto texts = o->texts_file.empty() ? o->texts : read_texts(o->texts_file);
    pipeline::EmbedOptions eo;
    eo.batch_size = o->compute.batch_size;
    std::vector<int64_t> kept;
    std::vector<pipeline::SkippedInput> skipped;
    Tensor im = emb->embed_image_files(o->images, eo, &kept, &skipped);
    Tensor tx = emb->embed_texts(texts, eo);
    for (auto& s : skipped) std::fprintf(stderr, "clipkit: skipped %s\n", s.reason.c_str());
    const int64_t N = static_cast<int64_t>(kept.size()), T = static_cast<int64_t>(texts.size()), D = emb->dim();
    const float scale = std::exp(emb->model().logit_scale());
    nlohmann::json out = nlohmann::json::array();
    std::vector<std::vector<double>> cos(static_cast<size_t>(N)), prob(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
      double mx = -1e30, sum = 0;
      for (int64_t t = 0; t < T; ++t) {
        double c = 0;
        for (int64_t d = 0; d < D; ++d) c += im.ptr<float>()[i * D + d] * tx.ptr<float>()[t * D + d];
        cos[i].push_back(c);
        mx = std::max(mx, scale * c);
      }
      for (double c : cos[i]) sum += std::exp(scale * c - mx);
      for (double c : cos[i]) prob[i].push_back(std::exp(scale * c - mx) / sum);
      out.push_back({{"path", o->images[static_cast<size_t>(kept[i])]}, {"cosine", cos[i]}, {"probs", prob[i]}});
    }
    if (o->json) {
      std::printf("%s\n", json_text(nlohmann::json{{"texts", texts}, {"images", out}}).c_str());
    } else {
      std::printf("cosine similarity (softmax over texts, logit scale %.1f)\n", scale);
      for (int64_t t = 0; t < T; ++t) std::printf("  T%lld  %s\n", static_cast<long long>(t), texts[t].c_str());
      std::printf("%-28s", "image");
      for (int64_t t = 0; t < T; ++t) std::printf("        T%-5lld", static_cast<long long>(t));
      std::printf("\n");
      for (int64_t i = 0; i < N; ++i) {
        std::string name = o->images[static_cast<size_t>(kept[i])];
        if (auto s = name.find_last_of('/'); s != std::string::npos) name = name.substr(s + 1);
        std::printf("%-28.28s", name.c_str());
        for (int64_t t = 0; t < T; ++t) std::printf(" %6.3f (%3.0f%%)", cos[i][t], 100 * prob[i][t]);
        std::printf("\n");
      }
    }
    return skipped.empty() ? kOk : kSkippedInputs;
  };
}

CommandRegistrar reg("compare", "Similarity table of images against texts (zero-shot scores)", setup);

}  // namespace
}  // namespace clipkit::cli
