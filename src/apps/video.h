// Video analysis on frame embeddings: sample frames (fixed step or at scene changes), embed them,
// score them against labels (zero-shot) and/or a text query, and turn the per-frame scores into a
// timeline of segments {start, end, label, score} with smoothing.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/classify.h"
#include "apps/encoder.h"
#include "apps/video_io.h"
#include "core/progress.h"

namespace clipkit::apps {

// Scene cuts are found on a 64x64 preview of every decoded frame (in both sampling modes) with a
// content-aware score, as PySceneDetect's content/adaptive detectors do: the mean per-pixel change
// of hue (weighted by saturation), saturation and value, and the fraction of pixels whose edge map
// (Sobel on value, dilated) changed, averaged (0 = same frame, 1 = everything changed). Because it
// compares pixels, not colour histograms, a new foreground object in front of an unchanged
// background counts. A frame starts a new scene when its score is at least the threshold AND at
// least 3x the mean score of the 4 frames before it (so camera motion, which raises every frame's
// score, does not cut at each frame).
// The default threshold, measured on the test clip of tests/apps/video_test.cpp (3 scenes, same
// background, the foreground object changes: 20% of the frame): cuts score 0.13, frames within a
// scene (the object moving, compression noise) at most 0.015; 0.05 separates them.
constexpr double kDefaultSceneThreshold = 0.05;

// The score of `b` after `a` (two previews of the same size), in [0, 1].
double scene_change_score(const image::Image& a, const image::Image& b);

class SceneDetector {
 public:
  explicit SceneDetector(double threshold = kDefaultSceneThreshold);
  // Feeds the next frame's preview; true when it starts a new scene (the first frame does).
  bool push(const image::Image& preview, double* score = nullptr);

 private:
  double threshold_;
  image::Image prev_;
  std::vector<double> recent_;  // the last scores, oldest first
};

struct VideoSampling {
  double every = 1.0;  // seconds between sampled frames (fixed-step mode)
  bool scenes = false;  // sample the first frame and the first frame of every scene instead
  double scene_threshold = kDefaultSceneThreshold;  // see SceneDetector
  int max_short_side = 0;  // frames are scaled down to this shorter side before preprocessing (0 = as decoded)
  int chunk = 32;          // frames embedded per batch
  int64_t max_pixels = 0;  // > 0: videos with larger frames are refused (VideoReader's limit)
  // Non-empty: every sampled frame is also written here as a JPEG (at the resolution it was
  // embedded from), named by its timestamp, e.g. "t000012.500.jpg" (for adding frames to an index).
  std::string frames_dir;
};

struct VideoFrames {
  VideoInfo info;
  double duration = 0;
  int64_t decoded = 0, decode_errors = 0;
  std::vector<double> t;            // sampled frame times
  std::vector<double> scene_cuts;   // times where a new scene starts (both sampling modes; not 0)
  Tensor emb;                       // [frames, D] normalized
  std::vector<std::string> frame_files;         // with VideoSampling::frames_dir: the JPEG per sampled frame
  std::vector<std::pair<int, int>> frame_sizes;  // with frames_dir: width, height of each saved frame
};

// Decodes the whole video once; throws clipkit::Error naming the file on unreadable input.
VideoFrames embed_video(const std::string& path, const Encoder& enc, const VideoSampling& s, Progress* p = nullptr);

// Fixed-step selection: is a frame at t (frame duration fd) the first one at or after the next
// sampling target? Advances *next_target. Exposed for tests.
bool take_fixed_step(double t, double step, double frame_dur, double* next_target);

struct Segment {
  double start = 0, end = 0;
  int label = -1;
  double score = 0;  // mean (unsmoothed) score of the label over the segment's frames
};
struct TimelineOptions {
  int smooth = 3;             // centred moving average over this many frames of one scene (1 = none)
  bool midpoint_boundaries = true;  // boundary halfway between frames (fixed step); false: at the new frame (scene cuts)
  // Scene starts (seconds): the moving average never reaches across one, and a segment boundary
  // between two frames that a cut separates is the cut. analyze_video passes VideoFrames::scene_cuts.
  std::vector<double> scene_cuts;
};
// t [F] ascending, scores [F][L]. Segments cover [0, duration].
std::vector<Segment> segment_timeline(const std::vector<double>& t, const std::vector<std::vector<double>>& scores,
                                      double duration, const TimelineOptions& o);

struct Match {
  double t = 0, score = 0;
};
// The k best frames by score, best first; frames within min_gap seconds of a better pick are skipped.
std::vector<Match> best_matches(const std::vector<double>& t, const std::vector<double>& score, int k,
                                double min_gap = 0);

struct VideoAnalysis {
  std::vector<std::string> labels;
  std::vector<ClassScores> frame_scores;  // per frame (empty without labels)
  std::vector<Segment> segments;
  std::string query;
  std::vector<double> query_cosine;  // per frame (empty without a query)
  std::vector<Match> matches;
};
// classifier may be null (query only); query_emb [D] may be null (labels only).
VideoAnalysis analyze_video(const VideoFrames& v, const ZeroShotClassifier* classifier, const float* query_emb,
                            const std::string& query, const TimelineOptions& o, int top_k, double min_gap);

// {"duration", "frames": [{"t", "scores": {label: p}}], "segments": [{"start","end","label","score"}],
//  "matches": [{"t","score"}] (with a query), "video": {...}}
nlohmann::json video_json(const VideoFrames& v, const VideoAnalysis& a);

}  // namespace clipkit::apps
