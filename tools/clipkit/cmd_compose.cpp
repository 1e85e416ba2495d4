// clipkit compose --vision DIR --text DIR --out DIR [--projection-dim 512] [--logit-scale-init 2.6592] [--seed N]
#include "command.h"
#include "model/clip_model.h"
#include "pipeline/compose.h"

namespace clipkit::cli {
namespace {

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<pipeline::ComposeOptions>();
  app.add_option("--vision", o->vision_dir, "CLIPModel or CLIPVisionModel checkpoint")->required();
  app.add_option("--text", o->text_dir, "RoBERTa or CLIP text checkpoint")->required();
  app.add_option("--out", o->out_dir, "output folder (HF VisionTextDualEncoderModel)")->required();
  app.add_option("--projection-dim", o->projection_dim, "size of the shared embedding")->capture_default_str();
  app.add_option("--logit-scale-init", o->logit_scale_init, "initial logit_scale (log)")->capture_default_str();
  app.add_option("--seed", o->seed, "seed for the new projection layers")->capture_default_str();
  return [o]() {
    pipeline::compose_dual_encoder(*o);
    auto m = model::ClipModel::load(o->out_dir);  // proves the result loads
    std::printf("wrote %s: %s, %.2fM parameters\n", o->out_dir.c_str(), m->architecture().c_str(), m->param_count() / 1e6);
    return kOk;
  };
}

CommandRegistrar reg("compose", "Build a VisionTextDualEncoder from a CLIP vision tower and a text tower", setup);

}  // namespace
}  // namespace clipkit::cli
