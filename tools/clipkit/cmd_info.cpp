// clipkit info --model MODEL [--json] (or `clipkit info MODEL`): architecture, parameter counts, dtypes.
#include <nlohmann/json.hpp>

#include "command.h"
#include "core/json.h"
#include "model/clip_model.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string dir;
  bool json = false;
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* flag = add_model_flag(app, o->dir, ModelUse::Optional, "model: a folder, a Hugging Face hub id (org/name[@revision]) in the local cache, or a cache folder");
  auto* pos = app.add_option("model_dir", o->dir, "the model, as a positional argument (same as --model)");
  add_check(app, [flag, pos] {
    if (flag->count() + pos->count() != 1) usage_error("give the model once: clipkit info MODEL (or --model MODEL)");
  });
  add_json_flag(app, o->json);
  return [o]() {
    model::LoadOptions lo;
    lo.check_finite = false;  // describes the folder as it is, corrupt weights included
    auto m = model::ClipModel::load(o->dir, lo);
    const auto& c = m->config();
    nlohmann::json j = {{"path", o->dir}, {"model_type", c.model_type}, {"architecture", m->architecture()},
                        {"parameters", m->param_count()}, {"vision_parameters", m->vision_param_count()},
                        {"text_parameters", m->text_param_count()}, {"weights_dtype", m->weights_dtype()},
                        {"projection_dim", c.projection_dim}, {"logit_scale", m->logit_scale()}};
    if (c.vision) j["image_size"] = c.vision->image_size, j["patch_size"] = c.vision->patch_size;
    if (c.text) j["text_tower"] = c.text->arch == model::TextArch::Clip ? "clip" : "roberta",
                j["max_text_positions"] = m->max_text_length();
    if (o->json) {
      std::printf("%s\n", json_text(j).c_str());
      return kOk;
    }
    std::printf("model        %s\n", o->dir.c_str());
    std::printf("type         %s\n", c.model_type.c_str());
    std::printf("architecture %s\n", m->architecture().c_str());
    std::printf("parameters   %.2fM (vision %.2fM, text %.2fM)\n", m->param_count() / 1e6, m->vision_param_count() / 1e6,
                m->text_param_count() / 1e6);
    std::printf("weights      %s\n", m->weights_dtype().c_str());
    if (m->has_projections()) std::printf("embedding    %d dims\n", c.projection_dim);
    else std::printf("embedding    none (no projection layers; pooled outputs)\n");
    if (c.vision) std::printf("image size   %d (patch %d)\n", c.vision->image_size, c.vision->patch_size);
    if (c.text) std::printf("text length  %lld tokens\n", static_cast<long long>(m->max_text_length()));
    if (m->has_vision() && m->has_text()) std::printf("logit_scale  %.6f (exp = %.4f)\n", m->logit_scale(), std::exp(m->logit_scale()));
    return kOk;
  };
}

CommandRegistrar reg("info", "Describe a model folder: architecture, parameters, dtypes", setup);

}  // namespace
}  // namespace clipkit::cli
