// The CLI's one flag vocabulary: every concept has one spelling, one help text and its default shown
// in --help, the same on every subcommand, and every value is validated right after parsing with a
// one-line message ("--batch-size must be >= 1, got 0") and exit status 2, before any work starts.
// Older spellings stay as hidden aliases (scripts and contracts use them):
//   -k/--k          hidden: --top-k (video)
//   --text/--image  the query of search, retrieve and video; hidden: --query, --query-image
//   --images FILE.. image files everywhere; --folder DIR a folder (recursive). Where --images took
//                   a folder (index, dedup, retrieve) one folder given to --images still means --folder.
//   --model NAME    a folder, a hub id (org/name[@revision]) in the local Hugging Face cache, or a cache
//                   folder, resolved to the snapshot folder before the command runs; optional where
//                   an index records its model. `info MODEL` keeps its positional form.
//   --json          one JSON document on stdout, on every command that produces a result.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/clip_model.h"

namespace clipkit::cli {

// A bad flag value found after parsing: main prints "clipkit CMD: error: MESSAGE" and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void usage_error(const std::string& message);

// Checks run after parsing, in the order added, for the (sub)commands that were parsed.
void add_check(CLI::App& app, std::function<void()> check);
void run_checks(const CLI::App& app);  // `app` and its parsed subcommands, recursively

// ---- numbers: default shown, range checked after parsing ----
CLI::Option* add_int_flag(CLI::App& app, const std::string& name, int& v, const std::string& help, int min,
                          int max = std::numeric_limits<int>::max());
CLI::Option* add_int_flag(CLI::App& app, const std::string& name, int64_t& v, const std::string& help, int64_t min,
                          int64_t max = std::numeric_limits<int64_t>::max());
// min_open/max_open: the bound itself is excluded.
CLI::Option* add_number_flag(CLI::App& app, const std::string& name, double& v, const std::string& help, double min,
                             double max, bool min_open = false, bool max_open = false);

// ---- the shared concepts ----
enum class ModelUse {
  Required,   // the command needs a model
  Optional,   // e.g. the model an index records is used when --model is absent
};
// --model NAME, resolved to its folder (io/model_location.h) before the command runs.
CLI::Option* add_model_flag(CLI::App& app, std::string& model, ModelUse use = ModelUse::Required,
                            const std::string& help = "");
// A flag naming another model (compose --vision-model), resolved the same way.
CLI::Option* add_model_path_flag(CLI::App& app, const std::string& name, std::string& model, const std::string& help);
// -k/--k (hidden alias --top-k)
CLI::Option* add_k_flag(CLI::App& app, int64_t& k, const std::string& help = "how many results");
CLI::Option* add_k_flag(CLI::App& app, int& k, const std::string& help = "how many results");
CLI::Option* add_batch_size_flag(CLI::App& app, int& batch_size,
                                 const std::string& help = "images or texts per model batch");
CLI::Option* add_threads_flag(CLI::App& app, int& threads);
// --precision fp32|bf16|int8 (int8 = false: training, which refuses int8 with a usage error).
CLI::Option* add_precision_flag(CLI::App& app, std::string& precision, const std::string& help = "",
                                bool int8 = true);
CLI::Option* add_json_flag(CLI::App& app, bool& json, const std::string& help = "print the result as JSON");

// --text TEXT | --image FILE: what to look for (hidden aliases --query, --query-image). Exactly one
// when required; the text must not be blank and the image must be a readable file.
struct QueryFlags {
  std::string text, image;
  bool any() const { return !text.empty() || !image.empty(); }
};
void add_query_flags(CLI::App& app, QueryFlags& q, bool required = true);

// --images FILE...: image files. A folder given there is refused with the flag to use instead,
// unless legacy_folder is set: then one folder given to --images (the old spelling) means --folder.
CLI::Option* add_images_flag(CLI::App& app, std::vector<std::string>& files, std::string* legacy_folder = nullptr,
                             const std::string& help = "image files");
// --folder DIR: a folder of images, recursive.
CLI::Option* add_folder_flag(CLI::App& app, std::string& folder,
                             const std::string& help = "a folder of images (searched recursively)");

// Exactly one (or with at_most_one, at most one) of these options was given.
void require_one_of(CLI::App& app, std::vector<CLI::Option*> opts, bool at_most_one = false);

// --threads, --batch-size, --precision, --device: what every compute command takes.
struct ComputeOptions {
  int threads = 0;  // 0 = all cores
  int batch_size = 32;
  std::string precision = "fp32";
  std::string device = "auto";  // backend::resolve_device
};
void add_compute_options(CLI::App& app, ComputeOptions& o);
void apply_compute_options(const ComputeOptions& o);  // sets the thread count
// --device NAME: the compute backend (the help names the backends built; an unknown or unbuilt one
// is an error naming them when the model loads).
CLI::Option* add_device_option(CLI::App& app, std::string& device);
// The model's precision and device, and the towers the command needs: Images leaves the text tower
// and its tokenizer on disk, Texts the vision tower (model::LoadOptions::vision/text).
enum class Towers { Both, Images, Texts };
// (Also prints note_precision's note.)
model::LoadOptions load_options(const ComputeOptions& o, Towers t = Towers::Both);
// Where `device` (resolved) runs `precision`'s matmuls emulated (Backend::precision_note: an
// AVX2-only CPU's bf16 and int8), says so on stderr, once per process and only on rank 0:
// "clipkit: note: --precision bf16: this CPU has no bf16 matmul instructions ...".
void note_precision(const std::string& device, const std::string& precision);

}  // namespace clipkit::cli
