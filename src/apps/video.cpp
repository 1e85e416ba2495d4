#include "apps/video.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <filesystem>

#include "apps/similarity.h"
#include "core/error.h"
#include "image/encode.h"
#include "io/atomic_file.h"

namespace clipkit::apps {

bool take_fixed_step(double t, double step, double frame_dur, double* next) {
  // A frame counts for the target if it starts within half a frame before it (timestamps are rounded).
  const double eps = frame_dur > 0 ? frame_dur / 2 : 1e-6;
  if (t + eps < *next) return false;
  while (*next <= t + eps) *next += step;
  return true;
}

namespace {

// Hue (0..1, circular), saturation and value of every pixel, and a dilated edge map of value.
struct PreviewFeatures {
  std::vector<float> h, s, v;
  std::vector<uint8_t> edge;
};

PreviewFeatures preview_features(const image::Image& im) {
  const int W = im.width, H = im.height;
  const size_t n = static_cast<size_t>(W) * H;
  PreviewFeatures f;
  f.h.resize(n), f.s.resize(n), f.v.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float r = im.rgb[3 * i] / 255.f, g = im.rgb[3 * i + 1] / 255.f, b = im.rgb[3 * i + 2] / 255.f;
    const float mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
    float h = 0;
    if (d > 0) {
      if (mx == r) h = (g - b) / d;
      else if (mx == g) h = 2 + (b - r) / d;
      else h = 4 + (r - g) / d;
      h /= 6;
      if (h < 0) h += 1;
    }
    f.h[i] = h, f.s[i] = mx > 0 ? d / mx : 0, f.v[i] = mx;
  }
  std::vector<uint8_t> e(n, 0);
  for (int y = 1; y + 1 < H; ++y)
    for (int x = 1; x + 1 < W; ++x) {
      auto v = [&](int dx, int dy) { return f.v[static_cast<size_t>(y + dy) * W + x + dx]; };
      const float gx = (v(1, -1) + 2 * v(1, 0) + v(1, 1)) - (v(-1, -1) + 2 * v(-1, 0) + v(-1, 1));
      const float gy = (v(-1, 1) + 2 * v(0, 1) + v(1, 1)) - (v(-1, -1) + 2 * v(0, -1) + v(1, -1));
      e[static_cast<size_t>(y) * W + x] = std::sqrt(gx * gx + gy * gy) / 4 > 0.1f;
    }
  f.edge.assign(n, 0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      uint8_t any = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < H && xx >= 0 && xx < W) any |= e[static_cast<size_t>(yy) * W + xx];
        }
      f.edge[static_cast<size_t>(y) * W + x] = any;
    }
  return f;
}

}  // namespace

double scene_change_score(const image::Image& a, const image::Image& b) {
  if (a.width != b.width || a.height != b.height || a.rgb.empty()) fail("scene score: previews differ in size");
  const auto fa = preview_features(a), fb = preview_features(b);
  const size_t n = fa.h.size();
  double dh = 0, ds = 0, dv = 0, de = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(fa.h[i] - fb.h[i]);
    dh += 2 * std::min(d, 1 - d) * 0.5f * (fa.s[i] + fb.s[i]);  // hue matters as much as the colour is saturated
    ds += std::fabs(fa.s[i] - fb.s[i]);
    dv += std::fabs(fa.v[i] - fb.v[i]);
    de += fa.edge[i] != fb.edge[i];
  }
  return (dh + ds + dv + de) / (4.0 * double(n));
}

SceneDetector::SceneDetector(double threshold) : threshold_(threshold) {
  if (!(threshold > 0 && threshold < 1)) fail("scene threshold must be in (0, 1), got {}", threshold);
}

bool SceneDetector::push(const image::Image& preview, double* score) {
  if (prev_.rgb.empty()) {
    prev_ = preview;
    if (score) *score = 0;
    return true;
  }
  const double s = scene_change_score(prev_, preview);
  if (score) *score = s;
  double mean = 0;
  for (double r : recent_) mean += r;
  if (!recent_.empty()) mean /= double(recent_.size());
  const bool cut = s >= threshold_ && s >= 3 * mean;
  recent_.push_back(s);
  if (recent_.size() > 4) recent_.erase(recent_.begin());
  prev_ = preview;
  return cut;
}

VideoFrames embed_video(const std::string& path, const Encoder& enc, const VideoSampling& s, Progress* p) {
  if (!s.scenes && !(s.every > 0)) fail("{}: sampling step must be positive seconds, got {}", path, s.every);
  if (!(s.scene_threshold > 0 && s.scene_threshold < 1)) fail("scene threshold must be in (0, 1), got {}", s.scene_threshold);
  SceneDetector scenes(s.scene_threshold);
  VideoReader rd(path, s.max_pixels);
  VideoFrames v;
  v.info = rd.info();
  const double fd = v.info.fps > 0 ? 1.0 / v.info.fps : 0;
  double next = 0;
  bool cut_here = false;
  std::vector<image::Image> buf;
  std::vector<Tensor> parts;
  auto flush = [&] {
    if (buf.empty()) return;
    std::vector<const image::Image*> ptrs;
    for (auto& b : buf) ptrs.push_back(&b);
    parts.push_back(enc.encode_images(ptrs));
    if (p) p->add(static_cast<int64_t>(buf.size()));
    buf.clear();
  };
  auto preview = [&](const DecodedFrame& f, const image::Image& small) {
    const bool first = f.index == 0;
    cut_here = scenes.push(small);
    if (cut_here && !first) v.scene_cuts.push_back(f.t);
  };
  auto want = [&](const DecodedFrame& f) { return s.scenes ? cut_here : take_fixed_step(f.t, s.every, fd, &next); };
  if (!s.frames_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(s.frames_dir, ec);
    if (ec) fail("{}: cannot create the frames folder: {}", s.frames_dir, ec.message());
  }
  auto take = [&](const DecodedFrame& f, const image::Image& img) {
    v.t.push_back(f.t);
    if (!s.frames_dir.empty()) {
      const std::string file = (std::filesystem::path(s.frames_dir) / fmt::format("t{:010.3f}.jpg", f.t)).string();
      auto jpg = image::encode_jpeg(img, 90);
      write_file_atomic(file, std::string(jpg.begin(), jpg.end()));
      v.frame_files.push_back(file);
      v.frame_sizes.emplace_back(img.width, img.height);
    }
    buf.push_back(img);
    if (static_cast<int>(buf.size()) >= std::max(1, s.chunk)) flush();
    return true;
  };
  v.decoded = rd.decode_with_preview(preview, want, take, s.max_short_side);
  flush();
  v.decode_errors = rd.decode_errors();
  v.info = rd.info();
  v.duration = std::max(v.info.duration, v.t.empty() ? 0.0 : v.t.back());
  v.emb = parts.empty() ? Tensor::zeros(DType::F32, {0, enc.dim()}) : pipeline::concat_rows(parts, enc.dim());
  return v;
}

std::vector<Segment> segment_timeline(const std::vector<double>& t, const std::vector<std::vector<double>>& scores,
                                      double duration, const TimelineOptions& o) {
  const int64_t F = static_cast<int64_t>(t.size());
  if (static_cast<int64_t>(scores.size()) != F) fail("timeline: {} frame times for {} score rows", F, scores.size());
  std::vector<Segment> segs;
  if (F == 0) return segs;
  const size_t L = scores[0].size();
  const int64_t half = std::max(0, o.smooth) / 2;
  // scene[i]: how many cuts are at or before frame i; the moving average stays within one scene.
  std::vector<int64_t> scene(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i)
    scene[static_cast<size_t>(i)] = std::upper_bound(o.scene_cuts.begin(), o.scene_cuts.end(), t[static_cast<size_t>(i)]) -
                                    o.scene_cuts.begin();
  std::vector<int> lab(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i) {
    std::vector<double> avg(L, 0.0);
    const int64_t a = std::max<int64_t>(0, i - half), b = std::min<int64_t>(F - 1, i + half);
    for (int64_t j = a; j <= b; ++j)
      if (scene[static_cast<size_t>(j)] == scene[static_cast<size_t>(i)])
        for (size_t l = 0; l < L; ++l) avg[l] += scores[static_cast<size_t>(j)][l];
    lab[static_cast<size_t>(i)] = static_cast<int>(std::max_element(avg.begin(), avg.end()) - avg.begin());
  }
  int64_t run0 = 0;
  for (int64_t i = 1; i <= F; ++i) {
    if (i < F && lab[static_cast<size_t>(i)] == lab[static_cast<size_t>(run0)]) continue;
    Segment s;
    s.label = lab[static_cast<size_t>(run0)];
    s.start = segs.empty() ? 0.0 : segs.back().end;
    if (i < F) {
      const double t0 = t[static_cast<size_t>(i - 1)], t1 = t[static_cast<size_t>(i)];
      auto cut = std::upper_bound(o.scene_cuts.begin(), o.scene_cuts.end(), t0);  // first cut after t0
      if (cut != o.scene_cuts.end() && *cut <= t1) s.end = *cut;
      else s.end = o.midpoint_boundaries ? (t0 + t1) / 2 : t1;
    } else {
      s.end = std::max(duration, t.back());
    }
    double sum = 0;
    for (int64_t j = run0; j < i; ++j) sum += scores[static_cast<size_t>(j)][static_cast<size_t>(s.label)];
    s.score = sum / double(i - run0);
    segs.push_back(s);
    run0 = i;
  }
  return segs;
}

std::vector<Match> best_matches(const std::vector<double>& t, const std::vector<double>& score, int k, double min_gap) {
  std::vector<size_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<Match> out;
  for (size_t i : order) {
    if (static_cast<int>(out.size()) >= k) break;
    bool near = false;
    for (auto& m : out) near |= std::fabs(m.t - t[i]) < min_gap;
    if (!near) out.push_back({t[i], score[i]});
  }
  return out;
}

VideoAnalysis analyze_video(const VideoFrames& v, const ZeroShotClassifier* clf, const float* q, const std::string& query,
                            const TimelineOptions& o, int top_k, double min_gap) {
  VideoAnalysis a;
  const int64_t F = v.emb.shape.empty() ? 0 : v.emb.dim(0), D = v.emb.shape.empty() ? 0 : v.emb.dim(1);
  if (clf) {
    a.labels = clf->labels();
    a.frame_scores = clf->classify(v.emb);
    std::vector<std::vector<double>> sc;
    for (auto& f : a.frame_scores) sc.push_back(f.scores);
    TimelineOptions to = o;
    to.scene_cuts = v.scene_cuts;
    a.segments = segment_timeline(v.t, sc, v.duration, to);
  }
  if (q) {
    a.query = query;
    for (int64_t i = 0; i < F; ++i) a.query_cosine.push_back(dot_exact(v.emb.ptr<float>() + i * D, q, D));
    a.matches = best_matches(v.t, a.query_cosine, top_k, min_gap);
  }
  return a;
}

nlohmann::json video_json(const VideoFrames& v, const VideoAnalysis& a) {
  using nlohmann::json;
  json frames = json::array(), segs = json::array();
  for (size_t i = 0; i < v.t.size(); ++i) {
    json sc = json::object();
    if (!a.frame_scores.empty())
      for (size_t l = 0; l < a.labels.size(); ++l) sc[a.labels[l]] = a.frame_scores[i].scores[l];
    json f = {{"t", v.t[i]}, {"scores", sc}};
    if (!a.query_cosine.empty()) f["query_score"] = a.query_cosine[i];
    frames.push_back(f);
  }
  for (auto& s : a.segments)
    segs.push_back({{"start", s.start}, {"end", s.end}, {"label", a.labels[static_cast<size_t>(s.label)]}, {"score", s.score}});
  json out = {{"duration", v.duration},
              {"frames", frames},
              {"segments", segs},
              {"video",
               {{"path", v.info.path},
                {"container", v.info.container},
                {"codec", v.info.codec},
                {"width", v.info.width},
                {"height", v.info.height},
                {"fps", v.info.fps},
                {"frames_decoded", v.decoded},
                {"decode_errors", v.decode_errors}}}};
  out["scene_cuts"] = v.scene_cuts;
  if (!a.query.empty()) {
    json m = json::array();
    for (auto& x : a.matches) m.push_back({{"t", x.t}, {"score", x.score}});
    out["query"] = a.query;
    out["matches"] = m;
  }
  return out;
}

}  // namespace clipkit::apps
