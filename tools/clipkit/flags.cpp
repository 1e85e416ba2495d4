#include "flags.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fmt/format.h>
#include <initializer_list>
#include <map>
#include <string_view>

#include "backend/backend.h"
#include "dist/launch.h"
#include "core/parallel.h"
#include "io/model_location.h"

namespace clipkit::cli {
namespace {

namespace fs = std::filesystem;

struct Check {
  int phase;  // 0: validation (usage errors), 1: resolution (may fail with clipkit::Error)
  std::function<void()> fn;
};

std::map<const CLI::App*, std::vector<Check>>& checks() {
  static std::map<const CLI::App*, std::vector<Check>> c;
  return c;
}

void add_phase_check(CLI::App& app, int phase, std::function<void()> fn) {
  checks()[&app].push_back({phase, std::move(fn)});
}

// "--batch-size" for "--batch-size", "--k" for "-k,--k"
std::string flag_name(const CLI::Option* o) {
  const auto& l = o->get_lnames();
  if (!l.empty()) return "--" + l.front();
  const auto& s = o->get_snames();
  if (!s.empty()) return "-" + s.front();
  return o->get_name();
}

template <typename T>
std::string range_text(T min, T max) {
  if (max == std::numeric_limits<T>::max()) return fmt::format("must be ≥ {}", min);
  return fmt::format("must be between {} and {}", min, max);
}

template <typename T>
CLI::Option* add_integer(CLI::App& app, const std::string& name, T& v, const std::string& help, T min, T max) {
  auto* o = app.add_option(name, v, help)->capture_default_str();
  add_check(app, [o, &v, min, max] {
    if (v < min || v > max) usage_error(fmt::format("{} {}, got {}", flag_name(o), range_text(min, max), v));
  });
  return o;
}

const char* kModelHelp = "model: a folder, a Hugging Face hub id (org/name[@revision]) in the local cache, or a cache folder";

// After the checks: the model name becomes its folder (io/model_location.h).
void resolve_model_after_parse(CLI::App& app, std::string& model) {
  add_phase_check(app, 1, [&model] {
    if (!model.empty()) model = resolve_model_dir(model);
  });
}

void collect_parsed(const CLI::App& app, std::vector<const CLI::App*>* out) {
  out->push_back(&app);
  for (const CLI::App* s : app.get_subcommands())
    if (s->parsed()) collect_parsed(*s, out);
}

// A CPU override variable (backend/cpu) set to a value it does not take is ignored: say so once.
void warn_if_ignored(const char* var, std::initializer_list<std::string_view> takes, const char* takes_text,
                     bool* warned) {
  const char* v = std::getenv(var);
  if (*warned || !v || !*v) return;
  for (std::string_view t : takes)
    if (t == v) return;
  *warned = true;
  std::fprintf(stderr, "clipkit: warning: %s=%s ignored: it takes %s\n", var, v, takes_text);
}

}  // namespace

void usage_error(const std::string& message) { throw UsageError(message); }

void add_check(CLI::App& app, std::function<void()> check) { add_phase_check(app, 0, std::move(check)); }

void run_checks(const CLI::App& app) {
  std::vector<const CLI::App*> parsed;
  collect_parsed(app, &parsed);
  for (int phase : {0, 1})
    for (const CLI::App* a : parsed) {
      auto it = checks().find(a);
      if (it == checks().end()) continue;
      for (auto& c : it->second)
        if (c.phase == phase) c.fn();
    }
}

CLI::Option* add_int_flag(CLI::App& app, const std::string& name, int& v, const std::string& help, int min, int max) {
  return add_integer<int>(app, name, v, help, min, max);
}

CLI::Option* add_int_flag(CLI::App& app, const std::string& name, int64_t& v, const std::string& help, int64_t min,
                          int64_t max) {
  return add_integer<int64_t>(app, name, v, help, min, max);
}

CLI::Option* add_number_flag(CLI::App& app, const std::string& name, double& v, const std::string& help, double min,
                             double max, bool min_open, bool max_open) {
  auto* o = app.add_option(name, v, help)->capture_default_str();
  add_check(app, [o, &v, min, max, min_open, max_open] {
    const bool lo = min_open ? v > min : v >= min, hi = max_open ? v < max : v <= max;
    if (lo && hi) return;  // NaN fails both
    const bool unbounded = max == std::numeric_limits<double>::infinity();
    if (unbounded) usage_error(fmt::format("{} must be {} {}, got {}", flag_name(o), min_open ? ">" : "≥", min, v));
    usage_error(fmt::format("{} must be in {}{}, {}{}, got {}", flag_name(o), min_open ? "(" : "[", min, max,
                            max_open ? ")" : "]", v));
  });
  return o;
}

CLI::Option* add_model_flag(CLI::App& app, std::string& model, ModelUse use, const std::string& help) {
  std::string h = help;
  if (h.empty()) h = use == ModelUse::Required ? kModelHelp : std::string(kModelHelp) + " (default: the index's model)";
  auto* o = app.add_option("--model", model, h);
  if (use == ModelUse::Required) o->required();
  resolve_model_after_parse(app, model);
  return o;
}

CLI::Option* add_model_path_flag(CLI::App& app, const std::string& name, std::string& model, const std::string& help) {
  auto* o = app.add_option(name, model, help + " (a folder, hub id or cache folder)");
  resolve_model_after_parse(app, model);
  return o;
}

CLI::Option* add_k_flag(CLI::App& app, int64_t& k, const std::string& help) {
  auto* o = add_int_flag(app, "-k,--k", k, help, int64_t{1}, int64_t{100000});
  app.add_option("--top-k", k)->group("");  // the old spelling (video)
  return o;
}

CLI::Option* add_k_flag(CLI::App& app, int& k, const std::string& help) {
  auto* o = add_int_flag(app, "-k,--k", k, help, 1, 100000);
  app.add_option("--top-k", k)->group("");
  return o;
}

CLI::Option* add_batch_size_flag(CLI::App& app, int& batch_size, const std::string& help) {
  return add_int_flag(app, "--batch-size", batch_size, help, 1);
}

CLI::Option* add_threads_flag(CLI::App& app, int& threads) {
  return add_int_flag(app, "--threads", threads, "compute threads (0 = all cores)", 0, 4096);
}

CLI::Option* add_precision_flag(CLI::App& app, std::string& precision, const std::string& help, bool int8) {
  auto* o = app.add_option("--precision", precision,
                           !help.empty() ? help
                           : int8 ? "matmul precision: fp32, bf16 (fp32 accumulation) or int8 (CPU: int8 weights "
                                    "per output channel, activations per token)"
                                  : "matmul precision: fp32, or bf16 (fp32 accumulation)")
                ->capture_default_str();
  add_check(app, [&precision, int8] {
    if (precision == "int8" && !int8)
      usage_error("--precision int8 is for inference (embed, index, serve); train in fp32 or bf16");
    if (precision != "fp32" && precision != "bf16" && precision != "int8")
      usage_error(fmt::format("--precision must be fp32, bf16{}, got \"{}\"", int8 ? " or int8" : "", precision));
  });
  return o;
}

CLI::Option* add_json_flag(CLI::App& app, bool& json, const std::string& help) { return app.add_flag("--json", json, help); }

void add_query_flags(CLI::App& app, QueryFlags& q, bool required) {
  auto* text = app.add_option("--text", q.text, "what to look for, in words");
  auto* image = app.add_option("--image", q.image, "what to look for: an example image file");
  auto* text_alias = app.add_option("--query", q.text)->group("");
  auto* image_alias = app.add_option("--query-image", q.image)->group("");
  add_check(app, [=, &q] {
    const bool t = text->count() + text_alias->count() > 0, i = image->count() + image_alias->count() > 0;
    if (t && i) usage_error("give --text or --image, not both");
    if (required && !t && !i) usage_error("give --text TEXT or --image FILE");
    if (t && q.text.find_first_not_of(" \t\r\n") == std::string::npos) usage_error("--text must not be empty");
    std::error_code ec;
    if (i && !fs::is_regular_file(q.image, ec))
      usage_error(fmt::format("--image {}: {}", q.image, fs::exists(q.image, ec) ? "not a file" : "no such file"));
  });
}

CLI::Option* add_images_flag(CLI::App& app, std::vector<std::string>& files, std::string* legacy_folder,
                             const std::string& help) {
  auto* o = app.add_option("--images", files, help)->default_str("");
  add_check(app, [&files, legacy_folder] {
    std::error_code ec;
    for (auto& f : files) {
      if (!fs::is_directory(f, ec)) continue;
      if (legacy_folder && files.size() == 1) {  // the old spelling of --folder
        *legacy_folder = f;
        files.clear();
        return;
      }
      usage_error(fmt::format("--images takes image files; {} is a folder (use --folder {})", f, f));
    }
  });
  return o;
}

CLI::Option* add_folder_flag(CLI::App& app, std::string& folder, const std::string& help) {
  auto* o = app.add_option("--folder", folder, help);
  add_check(app, [o, &folder] {
    std::error_code ec;
    if (o->count() && !fs::is_directory(folder, ec))
      usage_error(fmt::format("--folder {}: {}", folder, fs::exists(folder, ec) ? "not a folder" : "no such folder"));
  });
  return o;
}

void require_one_of(CLI::App& app, std::vector<CLI::Option*> opts, bool at_most_one) {
  add_check(app, [opts, at_most_one] {
    std::vector<std::string> given, all;
    for (auto* o : opts) {
      all.push_back(flag_name(o));
      if (o->count()) given.push_back(flag_name(o));
    }
    auto list = [](const std::vector<std::string>& v, const char* last) {
      std::string s;
      for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? last : ", ") + v[i];
      return s;
    };
    if (given.size() > 1) usage_error(fmt::format("give only one of {} (got {})", list(all, " or "), list(given, " and ")));
    if (given.empty() && !at_most_one) usage_error(fmt::format("give one of {}", list(all, " or ")));
  });
}

void add_compute_options(CLI::App& app, ComputeOptions& o) {
  add_threads_flag(app, o.threads);
  add_batch_size_flag(app, o.batch_size);
  add_precision_flag(app, o.precision);
  add_device_option(app, o.device);
}

CLI::Option* add_device_option(CLI::App& app, std::string& device) {
  std::string built;
  for (auto& d : backend::built_devices()) built += (built.empty() ? "" : ", ") + d;
  return app.add_option("--device", device,
                        "compute device (built: " + built + "; auto = cuda when built and a GPU is present, else cpu)")
      ->capture_default_str();
}

model::LoadOptions load_options(const ComputeOptions& o, Towers t) {
  model::LoadOptions l;
  l.precision = backend::precision_from_name(o.precision);
  l.device = backend::resolve_device(o.device);
  l.vision = t != Towers::Texts;
  l.text = t != Towers::Images;
  note_precision(l.device, o.precision);
  return l;
}

void note_precision(const std::string& device, const std::string& precision) {
  static bool said = false, warned = false, warned_attention = false;
  if (device == "cpu") {  // the bf16 route (backend/cpu/dnnl_matmul.h), inference attention (attention_fused.h)
    if (precision == "bf16") warn_if_ignored("CLIPKIT_CPU_BF16", {"native", "fp32"}, "native or fp32", &warned);
    warn_if_ignored("CLIPKIT_CPU_ATTENTION", {"onednn"}, "onednn", &warned_attention);
  }
  if (said || precision == "fp32") return;
  std::string note;
  try {
    if (dist::launch_env().rank != 0) return;
    note = backend::backend_for(device).precision_note(backend::precision_from_name(precision));
  } catch (const std::exception&) {  // an unknown device, no usable GPU, a bad launcher variable: the command says which
    return;
  }
  if (note.empty()) return;
  said = true;
  std::fprintf(stderr, "clipkit: note: --precision %s: %s\n", precision.c_str(), note.c_str());
}

void apply_compute_options(const ComputeOptions& o) {
  set_num_threads(o.threads);
  backend::set_local_device(dist::launch_env().local_rank);  // one GPU per rank under mpirun, before any backend is made
}

}  // namespace clipkit::cli
