// clipkit compose --vision-model M --text-model M --out DIR [--projection-dim 512] [--logit-scale-init 2.6592]
//                 [--seed N] [--json]
// (--vision and --text are the old spellings; the models are folders, hub ids or cache folders.)
#include <nlohmann/json.hpp>

#include "command.h"
#include "model/clip_model.h"
#include "pipeline/compose.h"

namespace clipkit::cli {
namespace {

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<pipeline::ComposeOptions>();
  auto json = std::make_shared<bool>(false);
  auto* vision = add_model_path_flag(app, "--vision-model", o->vision_dir, "CLIPModel or CLIPVisionModel checkpoint");
  auto* text = add_model_path_flag(app, "--text-model", o->text_dir, "RoBERTa or CLIP text checkpoint");
  auto* vision_alias = app.add_option("--vision", o->vision_dir)->group("");
  auto* text_alias = app.add_option("--text", o->text_dir)->group("");
  add_check(app, [=] {
    if (vision->count() + vision_alias->count() == 0) usage_error("--vision-model is required");
    if (text->count() + text_alias->count() == 0) usage_error("--text-model is required");
  });
  app.add_option("--out", o->out_dir, "output folder (HF VisionTextDualEncoderModel)")->required();
  add_int_flag(app, "--projection-dim", o->projection_dim, "size of the shared embedding", 1);
  app.add_option("--logit-scale-init", o->logit_scale_init, "initial logit_scale (log)")->capture_default_str();
  app.add_option("--seed", o->seed, "seed for the new projection layers")->capture_default_str();
  add_json_flag(app, *json);
  return [o, json]() {
    pipeline::compose_dual_encoder(*o);
    auto m = model::ClipModel::load(o->out_dir);  // proves the result loads
    if (*json)
      std::printf("%s\n", nlohmann::json{{"out", o->out_dir}, {"architecture", m->architecture()},
                                         {"parameters", m->param_count()}}.dump().c_str());
    else
      std::printf("wrote %s: %s, %.2fM parameters\n", o->out_dir.c_str(), m->architecture().c_str(), m->param_count() / 1e6);
    return kOk;
  };
}

CommandRegistrar reg("compose", "Build a VisionTextDualEncoder from a CLIP vision tower and a text tower", setup);

}  // namespace
}  // namespace clipkit::cli
