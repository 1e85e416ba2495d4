#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"
#include "train/trainer_internal.h"

namespace clipkit::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

int64_t restore_training_state(const std::string& ck, AdamW& opt, int64_t total, int64_t B) {
  auto st = parse_json(read_file(ck + "/trainer_state.json"), ck + "/trainer_state.json");
  const int64_t step = st.at("global_step").get<int64_t>();
  if (st.value("total_steps", total) != total || st.value("batch_size", B) != B)
    fail("{}: checkpoint was made with a different --batch-size/--epochs/--max-steps; resume with the same flags", ck);
  SafeTensorsFile os(ck + "/optimizer.safetensors");
  for (size_t i = 0; i < opt.params().size(); ++i) {
    const auto& name = opt.params()[i].name;
    if (!os.has("exp_avg." + name))
      fail("{}: optimizer state has no \"{}\" (was it made with other --freeze flags?)", ck, name);
    Tensor a = os.get("exp_avg." + name).to_f32(), v = os.get("exp_avg_sq." + name).to_f32();
    opt.exp_avg(i).assign(a.ptr<float>(), a.ptr<float>() + a.numel());
    opt.exp_avg_sq(i).assign(v.ptr<float>(), v.ptr<float>() + v.numel());
  }
  opt.set_steps(step);
  return step;
}

void save_training_checkpoint(const std::string& out, const std::string& model_dir, int64_t step, bool final_step,
                              const std::map<std::string, Tensor>& trained, AdamW& opt, json state) {
  std::string ckdir = (fs::path(out) / ("checkpoint-" + std::to_string(step))).string();
  write_dir_atomic(ckdir, [&](const std::string& tmp) {
    write_hf_checkpoint(model_dir, tmp, trained);
    std::vector<std::pair<std::string, Tensor>> st;
    for (size_t i = 0; i < opt.params().size(); ++i) {
      const auto& p = opt.params()[i];
      Tensor a = Tensor::zeros(DType::F32, {p.n}), v = Tensor::zeros(DType::F32, {p.n});
      if (!opt.exp_avg(i).empty()) std::memcpy(a.data, opt.exp_avg(i).data(), a.nbytes());
      if (!opt.exp_avg_sq(i).empty()) std::memcpy(v.data, opt.exp_avg_sq(i).data(), v.nbytes());
      st.emplace_back("exp_avg." + p.name, a);
      st.emplace_back("exp_avg_sq." + p.name, v);
    }
    write_safetensors(tmp + "/optimizer.safetensors", st, {{"step", std::to_string(step)}});
    state["global_step"] = step;
    write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
  });
  if (final_step) write_hf_checkpoint(model_dir, out, trained);  // the final model at the top of --out
}

StepPlan plan_steps(int64_t rows, int64_t batch, int64_t max_steps, int64_t epochs) {
  StepPlan p;
  p.steps_per_epoch = (rows + batch - 1) / batch;
  p.total = max_steps > 0 ? max_steps : p.steps_per_epoch * epochs;
  p.epochs = (p.total + p.steps_per_epoch - 1) / p.steps_per_epoch;
  return p;
}

int64_t begin_run(const std::string& checkpoint, AdamW& opt, const StepPlan& plan, int64_t batch,
                  const std::string& metrics, bool lead) {
  if (checkpoint.empty()) {
    if (lead && fs::exists(metrics)) fs::remove(metrics);
    return 0;
  }
  const int64_t step = restore_training_state(checkpoint, opt, plan.total, batch);
  if (lead) std::fprintf(stderr, "clipkit train: resumed from %s (step %lld)\n", checkpoint.c_str(), static_cast<long long>(step));
  // the killed run may have logged steps after this checkpoint: they are run again, so drop them
  if (lead && fs::exists(metrics)) {
    std::string kept, text = read_file(metrics);
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // a line cut by the kill
      const std::string_view line(text.data() + pos, end - pos);
      json j;
      const bool after = try_parse_json(line, &j) && j.is_object() && j.contains("step") &&
                         j["step"].is_number_integer() && j["step"].get<int64_t>() > step;
      if (!after) kept.append(line).append("\n");
      pos = end + 1;
    }
    write_file_atomic(metrics, kept);
  }
  return step;
}

void report_eval(const std::string& metrics, const json& ev, int64_t epoch) {
  log_line(metrics, ev);
  std::fprintf(stderr, "\nclipkit train: epoch %lld eval loss %.4f  i2t R@1/5/10 %.3f/%.3f/%.3f  t2i R@1/5/10 %.3f/%.3f/%.3f\n",
               static_cast<long long>(epoch), ev["loss"].get<double>(), ev["i2t_r1"].get<double>(),
               ev["i2t_r5"].get<double>(), ev["i2t_r10"].get<double>(), ev["t2i_r1"].get<double>(),
               ev["t2i_r5"].get<double>(), ev["t2i_r10"].get<double>());
}

void gather_batch(Comm& comm, const std::vector<float>& ei, const std::vector<float>& et, int64_t n, int64_t share,
                  int64_t P, std::vector<float>* ai, std::vector<float>* at) {
  const int R = comm.size();
  std::vector<float> gi(static_cast<size_t>(R * share * P)), gt(static_cast<size_t>(R * share * P));
  comm.allgather(ei.data(), share * P, gi.data());
  comm.allgather(et.data(), share * P, gt.data());
  ai->clear();
  at->clear();
  for (int r = 0; r < R; ++r) {  // drop the padding rows
    const int64_t rb = std::min(n, r * share), re = std::min(n, rb + share);
    ai->insert(ai->end(), gi.begin() + r * share * P, gi.begin() + (r * share + re - rb) * P);
    at->insert(at->end(), gt.begin() + r * share * P, gt.begin() + (r * share + re - rb) * P);
  }
}

double StepMeter::samples_per_s() const {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return el > 0 ? static_cast<double>(samples) / el : 0.0;
}

nlohmann::json StepMeter::line(int64_t step, int64_t steps_per_epoch, double loss, double grad_norm, double lr,
                               float logit_scale) const {
  return {{"step", step}, {"epoch", static_cast<double>(step) / steps_per_epoch}, {"loss", loss},
          {"grad_norm", grad_norm}, {"learning_rate", lr}, {"logit_scale", logit_scale},
          {"samples_per_s", samples_per_s()}};
}

}  // namespace clipkit::train
