// clipkit video --model DIR VIDEO (--labels "a,b" | --labels-file F | --text "...") [--template T ...]
//               [--every SECONDS | --fps F | --scenes [--scene-threshold X]] [--smooth N] [-k K] [--json]
//               [--index DIR [--frames-dir DIR]]
// (--query and --top-k are the old spellings of --text and -k; --model is optional when --index
// names an existing index: its model.)
// Decodes the video with FFmpeg's libraries, samples frames (fixed rate or at scene changes),
// embeds them and prints a timeline: per-frame label scores, smoothed segments
// {start, end, label, score}, and with --query the best-matching timestamps. With --index the
// sampled frames are saved as JPEGs (default INDEX/frames/<video>-<hash>/) and added to that index
// (created when missing) with their video and timestamp, so `clipkit search` finds moments.
#include <nlohmann/json.hpp>

#include "apps/library_apps.h"
#include "apps/video.h"
#include "command.h"
#include "image_backend_flag.h"
#include "core/error.h"
#include "core/json.h"
#include "index/query.h"
#include "pipeline/embedder.h"

namespace clipkit::cli {
namespace {

struct Opts {
  std::string model, video, labels, labels_file, index, frames_dir;
  QueryFlags query;
  std::vector<std::string> templates;
  double every = 1, fps = 0, scene_threshold = apps::kDefaultSceneThreshold, min_gap = 0;
  bool scenes = false, json = false, full_res = false;
  int smooth = 3, top_k = 5;
  ComputeOptions compute;
  std::string image_backend = "pil";
};

RunFn setup(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  add_model_flag(app, o->model, ModelUse::Optional,
                 "model (required, except with --index naming an existing index: its model)");
  app.add_option("video", o->video, "video file (mp4, mkv, webm, mov, avi, ...)")->required();
  app.add_option("--labels", o->labels, "comma-separated labels, e.g. \"violence,something else\"");
  app.add_option("--labels-file", o->labels_file, "labels, one per line");
  app.add_option("--template", o->templates, "prompt template with {} (repeatable; default \"a photo of a {}.\")")
      ->allow_extra_args(false)->default_str("");
  add_query_flags(app, o->query, false);
  auto* every = add_number_flag(app, "--every", o->every, "sample a frame every SECONDS", 0,
                                std::numeric_limits<double>::infinity(), true);
  auto* fps = add_number_flag(app, "--fps", o->fps, "sample F frames per second (0 = use --every)", 0,
                              std::numeric_limits<double>::infinity());
  auto* sc = app.add_flag("--scenes", o->scenes, "sample the first frame of every scene (content-aware cuts)");
  require_one_of(app, {every, fps, sc}, true);
  add_number_flag(app, "--scene-threshold", o->scene_threshold,
                  "scene cut: content change (HSV + edges, 0..1) above this; see docs/apps.md", 0, 1, true, true);
  add_int_flag(app, "--smooth", o->smooth, "moving average over N sampled frames within a scene (1 = none)", 1);
  add_k_flag(app, o->top_k, "with --text or --image: how many timestamps");
  add_number_flag(app, "--min-gap", o->min_gap, "with --text or --image: seconds between reported matches", 0,
                  std::numeric_limits<double>::infinity());
  app.add_flag("--full-res", o->full_res, "preprocess frames from full resolution (default: scaled down first)");
  add_json_flag(app, o->json);
  app.add_option("--index", o->index, "also add the sampled frames to this index (created when missing)");
  app.add_option("--frames-dir", o->frames_dir, "with --index: where the frame JPEGs go (default INDEX/frames/...)");
  add_image_backend_option(app, o->image_backend);
  add_compute_options(app, o->compute);
  return [o]() {
    apply_compute_options(o->compute);
    if (o->labels.empty() && o->labels_file.empty() && !o->query.any() && o->index.empty())
      fail("nothing to do: give --labels, --labels-file, --text, --image or --index");
    if (!o->frames_dir.empty() && o->index.empty()) fail("--frames-dir needs --index");
    if (!o->labels.empty() && !o->labels_file.empty()) fail("give --labels or --labels-file, not both");
    apps::VideoSampling s;
    s.scenes = o->scenes;
    s.every = o->fps > 0 ? 1.0 / o->fps : o->every;
    s.scene_threshold = o->scene_threshold;
    const model::LoadOptions lo = load_options(o->compute);
    std::unique_ptr<index::Library> lib;
    if (!o->index.empty() && index::Library::exists(o->index)) lib = index::Library::open(o->index);
    if (o->model.empty() && !lib) usage_error("--model is required (except with --index naming an existing index)");
    auto emb = lib ? index::load_query_model(*lib, o->model, lo) : pipeline::Embedder::load(o->model, lo);
    emb->set_image_backend(image_backend(o->image_backend));
    // Frames are scaled with FFmpeg to the preprocessing's shortest edge first: CLIP's resize then
    // has little left to do, and 4K frames cost no more than small ones.
    if (!o->full_res) s.max_short_side = std::max(emb->preprocess_config().shortest_edge, emb->preprocess_config().crop_h);
    s.chunk = o->compute.batch_size;
    if (!o->index.empty()) {
      s.frames_dir = o->frames_dir.empty() ? apps::default_frames_dir(o->index, o->video) : o->frames_dir;
    }
    apps::EmbedderEncoder enc(*emb, o->compute.batch_size);
    std::unique_ptr<apps::ZeroShotClassifier> clf;
    if (!o->labels.empty() || !o->labels_file.empty()) {
      apps::ZeroShotOptions zo;
      if (!o->templates.empty()) zo.templates = o->templates;
      auto labels = o->labels_file.empty() ? apps::parse_label_list(o->labels)
                                           : apps::read_label_file(o->labels_file, nullptr);
      clf = std::make_unique<apps::ZeroShotClassifier>(enc, labels, zo);
    }
    std::vector<float> q;
    std::string query_name = o->query.text;
    if (o->query.any()) {
      Tensor t;
      if (!o->query.text.empty()) {
        t = enc.encode_texts({o->query.text});
      } else {
        std::vector<int64_t> kept;
        std::vector<pipeline::SkippedInput> skipped;
        t = emb->embed_image_files({o->query.image}, {}, &kept, &skipped);
        if (!skipped.empty()) fail("{}", skipped[0].reason);
        query_name = "image:" + o->query.image;
      }
      q.assign(t.ptr<float>(), t.ptr<float>() + t.dim(1));
    }
    Progress p("video", 0, "frames");
    auto v = apps::embed_video(o->video, enc, s, &p);
    p.finish();
    if (v.decode_errors) std::fprintf(stderr, "clipkit: warning: %s: %lld corrupt packets or frames skipped\n",
                                      o->video.c_str(), static_cast<long long>(v.decode_errors));
    if (!o->index.empty()) {
      const int64_t added = apps::index_video_frames(o->index, pipeline::model_identity(*emb), o->video, v);
      std::fprintf(stderr, "clipkit: added %lld of %zu frames to %s (frames in %s)\n", static_cast<long long>(added),
                   v.t.size(), o->index.c_str(), s.frames_dir.c_str());
    }
    apps::TimelineOptions to;
    to.smooth = o->smooth;
    to.midpoint_boundaries = !o->scenes;
    auto a = apps::analyze_video(v, clf.get(), q.empty() ? nullptr : q.data(), query_name, to, o->top_k, o->min_gap);
    if (o->json) {
      std::printf("%s\n", json_text(apps::video_json(v, a)).c_str());
      return kOk;
    }
    std::printf("%s: %s/%s %dx%d, %.2f fps, %.2f s; %lld frames decoded, %zu sampled\n", o->video.c_str(),
                v.info.container.c_str(), v.info.codec.c_str(), v.info.width, v.info.height, v.info.fps, v.duration,
                static_cast<long long>(v.decoded), v.t.size());
    if (!a.segments.empty()) {
      std::printf("%9s %9s  %-30s %s\n", "start", "end", "label", "score");
      for (auto& sg : a.segments)
        std::printf("%9.2f %9.2f  %-30.30s %.4f\n", sg.start, sg.end, a.labels[static_cast<size_t>(sg.label)].c_str(),
                    sg.score);
    }
    if (!a.matches.empty()) {
      std::printf("best matches for \"%s\":\n", query_name.c_str());
      for (auto& m : a.matches) std::printf("  t=%8.2f s  cosine %.4f\n", m.t, m.score);
    }
    return kOk;
  };
}

CommandRegistrar reg("video", "Timeline of a video: labels per segment, timestamps matching a query", setup);

}  // namespace
}  // namespace clipkit::cli
