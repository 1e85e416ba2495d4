// clipkit convert open-clip DIR --out HF_DIR [--tokenizer DIR] [--json]
// An open_clip checkpoint folder (open_clip_config.json + open_clip_model.safetensors) as a Hugging
// Face CLIPModel folder that every clipkit command (and transformers) loads; see
// src/pipeline/convert_open_clip.h for what is handled.
#include <nlohmann/json.hpp>

#include "command.h"
#include "pipeline/convert_open_clip.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string in, out, tokenizer;
  bool json = false;
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  app.require_subcommand(1);
  auto* oc = app.add_subcommand("open-clip", "an open_clip checkpoint folder -> a Hugging Face CLIPModel folder");
  oc->add_option("dir", o->in, "folder with open_clip_config.json and open_clip_model.safetensors")->required();
  oc->add_option("--out", o->out, "output folder (config.json, model.safetensors, tokenizer, preprocessor)")->required();
  oc->add_option("--tokenizer", o->tokenizer, "folder with vocab.json + merges.txt (\"\" = the bundled CLIP BPE)");
  add_json_flag(*oc, o->json);
  return [o, oc]() {
    if (!oc->parsed()) return static_cast<int>(kUsage);
    auto r = pipeline::convert_open_clip(o->in, o->out, o->tokenizer);
    if (o->json)
      std::printf("%s\n", nlohmann::json{{"out", o->out}, {"architecture", r.architecture}, {"tensors", r.tensors}}
                              .dump()
                              .c_str());
    else
      std::printf("wrote %s: %s, %lld tensors\n", o->out.c_str(), r.architecture.c_str(), static_cast<long long>(r.tensors));
    return static_cast<int>(kOk);
  };
}

CommandRegistrar reg("convert", "Convert other checkpoint formats to Hugging Face folders (open-clip)", setup);

}  // namespace
}  // namespace clipkit::cli
