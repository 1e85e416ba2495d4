// clipkit init --arch NAME --out DIR [--seed N] [--json]: a random-weight HF checkpoint (benchmarks, demos).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "command.h"
#include "model/random_init.h"
#include "pipeline/processor_files.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string arch = "clip-vit-base-patch32", out, tokenizer;
  uint64_t seed = 0;
  bool json = false;
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  std::string names;
  for (auto& a : model::known_architectures()) names += (names.empty() ? "" : "|") + a;
  app.add_option("--arch", o->arch, "architecture: " + names)->capture_default_str();
  app.add_option("--out", o->out, "output folder")->required();
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  app.add_option("--tokenizer", o->tokenizer, "folder with CLIP vocab.json + merges.txt (\"\" = the bundled one)");
  add_json_flag(app, o->json);
  return [o]() {
    auto cfg = model::architecture_config(o->arch);
    std::filesystem::create_directories(o->out);
    if (cfg.model_type == "roberta") {
      model::write_random_roberta(*cfg.text, o->out, o->seed);
      std::string vocab = o->tokenizer.empty() ? pipeline::assets_dir() + "/tokenizers/gpt2" : o->tokenizer;
      pipeline::write_roberta_tokenizer_files(o->out, vocab, cfg.text->max_position_embeddings - 2);
    } else {
      model::write_random_clip(cfg, o->out, o->seed);
      pipeline::write_clip_preprocessor_config(o->out, cfg.vision->image_size);
      std::string vocab = o->tokenizer.empty() ? pipeline::assets_dir() + "/tokenizers/clip" : o->tokenizer;
      pipeline::write_clip_tokenizer_files(o->out, vocab, cfg.text->max_position_embeddings);
    }
    if (o->json)
      std::printf("%s\n", nlohmann::json{{"out", o->out}, {"arch", o->arch}, {"seed", o->seed}}.dump().c_str());
    else
      std::printf("wrote %s (%s, random weights, seed %llu)\n", o->out.c_str(), o->arch.c_str(),
                  static_cast<unsigned long long>(o->seed));
    return kOk;
  };
}

CommandRegistrar reg("init", "Write a random-weight HF checkpoint (CLIP, or a RoBERTa text tower) of a standard architecture", setup);

}  // namespace
}  // namespace clipkit::cli
