#include "apps/video.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/synthetic.h"
#include "apps/video_io.h"
#include "apps_test_util.h"
#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

// 6 s at 10 fps: red [0, 2), green [2, 4), blue [4, 6). Known content and scene changes.
std::string make_video(const std::string& name, const std::string& codec = "") {
  static std::string dir = test::apps_temp_dir("video");
  const std::string path = dir + "/" + name;
  if (std::filesystem::exists(path)) return path;
  apps::VideoWriter w(path, 64, 48, 10, codec);
  const uint8_t col[3][3] = {{210, 30, 30}, {30, 190, 40}, {30, 40, 200}};
  for (int f = 0; f < 60; ++f) {
    const auto* c = col[f / 20];
    w.write(apps::synthetic::solid(64, 48, c[0], c[1], c[2], static_cast<uint64_t>(f + 1)));
  }
  w.close();
  return path;
}

test::SyntheticEncoder colour_encoder() {
  test::SyntheticEncoder enc(8, 50.f);
  enc.set_text("a photo of a red scene.", {1, 0.15f, 0.15f, 0.05f});
  enc.set_text("a photo of a green scene.", {0.15f, 1, 0.2f, 0.05f});
  enc.set_text("a photo of a blue scene.", {0.15f, 0.2f, 1, 0.05f});
  enc.set_text("green", {0.15f, 1, 0.2f, 0.05f});
  return enc;
}

TEST(VideoReader, TimestampsAndInfoAcrossContainers) {
  for (std::string name : {"v.mp4", "v.mkv", "v.mov", "v.avi", "v.webm"}) {
    apps::VideoReader r(make_video(name));
    EXPECT_EQ(r.info().width, 64) << name;
    EXPECT_EQ(r.info().height, 48) << name;
    EXPECT_NEAR(r.info().fps, 10, 0.01) << name;
    std::vector<double> ts;
    int64_t n = r.decode([](const apps::DecodedFrame&) { return true; },
                         [&](const apps::DecodedFrame& f, const image::Image& im) {
                           EXPECT_EQ(im.width, 64);
                           ts.push_back(f.t);
                           return true;
                         });
    ASSERT_EQ(n, 60) << name;
    for (int i = 0; i < 60; ++i) EXPECT_NEAR(ts[static_cast<size_t>(i)], i * 0.1, 0.002) << name << " frame " << i;
    EXPECT_NEAR(r.info().duration, 6.0, 0.11) << name;
    EXPECT_EQ(r.decode_errors(), 0) << name;
  }
}

TEST(VideoSampling, FixedStep) {
  double next = 0;
  std::vector<double> taken;
  for (int i = 0; i < 60; ++i)
    if (apps::take_fixed_step(i * 0.1, 0.5, 0.1, &next)) taken.push_back(i * 0.1);
  ASSERT_EQ(taken.size(), 12u);
  for (size_t k = 0; k < taken.size(); ++k) EXPECT_NEAR(taken[k], 0.5 * double(k), 1e-9);
  // A step shorter than a frame takes every frame once.
  next = 0;
  int n = 0;
  for (int i = 0; i < 10; ++i) n += apps::take_fixed_step(i * 0.1, 0.01, 0.1, &next);
  EXPECT_EQ(n, 10);
}

TEST(VideoTimeline, SegmentsWithinOneSamplingStep) {
  auto enc = colour_encoder();
  apps::ZeroShotOptions zo;
  zo.templates = {"a photo of a {} scene."};
  apps::ZeroShotClassifier clf(enc, {"red", "green", "blue"}, zo);
  for (double step : {0.5, 0.7, 1.0}) {
    apps::VideoSampling s;
    s.every = step;
    auto v = apps::embed_video(make_video("v.mp4"), enc, s);
    EXPECT_EQ(v.decoded, 60);
    apps::TimelineOptions to;
    auto q = enc.encode_texts({"green"});
    auto a = apps::analyze_video(v, &clf, q.ptr<float>(), "green", to, 2, 0);
    ASSERT_EQ(a.segments.size(), 3u) << step;
    EXPECT_EQ(a.segments[0].label, 0);
    EXPECT_EQ(a.segments[1].label, 1);
    EXPECT_EQ(a.segments[2].label, 2);
    EXPECT_EQ(a.segments[0].start, 0);
    EXPECT_NEAR(a.segments[0].end, 2.0, step) << step;
    EXPECT_NEAR(a.segments[1].end, 4.0, step) << step;
    EXPECT_NEAR(a.segments[2].end, 6.0, 0.11);
    EXPECT_GT(a.segments[1].score, 0.9);
    ASSERT_EQ(a.matches.size(), 2u);
    for (auto& m : a.matches) {
      EXPECT_GE(m.t, 2.0 - 1e-6);
      EXPECT_LT(m.t, 4.0);
    }
    EXPECT_GE(a.matches[0].score, a.matches[1].score);
    auto j = apps::video_json(v, a);
    EXPECT_NEAR(j["duration"].get<double>(), 6.0, 0.11);
    ASSERT_EQ(j["frames"].size(), v.t.size());
    EXPECT_TRUE(j["frames"][0]["scores"].contains("green"));
    EXPECT_EQ(j["segments"][1]["label"], "green");
    EXPECT_TRUE(j["segments"][1].contains("start") && j["segments"][1].contains("end") && j["segments"][1].contains("score"));
    EXPECT_TRUE(j["matches"][0].contains("t") && j["matches"][0].contains("score"));
  }
}

TEST(VideoTimeline, ScenesAtTheCuts) {
  auto enc = colour_encoder();
  apps::VideoSampling s;
  s.scenes = true;
  auto v = apps::embed_video(make_video("v.mkv"), enc, s);
  ASSERT_EQ(v.scene_cuts.size(), 2u);
  EXPECT_NEAR(v.scene_cuts[0], 2.0, 0.101);
  EXPECT_NEAR(v.scene_cuts[1], 4.0, 0.101);
  ASSERT_EQ(v.t.size(), 3u);  // first frame + one per cut
  EXPECT_EQ(v.t[0], 0);
  apps::ZeroShotOptions zo;
  zo.templates = {"a photo of a {} scene."};
  apps::ZeroShotClassifier clf(enc, {"red", "green", "blue"}, zo);
  apps::TimelineOptions to;
  to.smooth = 1;
  to.midpoint_boundaries = false;
  auto a = apps::analyze_video(v, &clf, nullptr, "", to, 0, 0);
  ASSERT_EQ(a.segments.size(), 3u);
  EXPECT_NEAR(a.segments[0].end, 2.0, 0.101);
  EXPECT_NEAR(a.segments[1].end, 4.0, 0.101);
}

// 9 s at 10 fps, 96x64: the same background (a grey-blue gradient) all along; the foreground object
// (about 20% of the frame) is a red disc [0, 3), a blue square [3, 6), a green bar [6, 9), each
// drifting 1 px per frame. A colour histogram barely changes at the cuts; the content score does.
std::string make_foreground_video() {
  static std::string dir = test::apps_temp_dir("video_fg");
  const std::string path = dir + "/fg.mp4";
  if (std::filesystem::exists(path)) return path;
  apps::VideoWriter w(path, 96, 64, 10);
  for (int f = 0; f < 90; ++f) {
    image::Image im;
    im.width = 96, im.height = 64;
    im.rgb.resize(96 * 64 * 3);
    const int scene = f / 30, drift = f % 30;
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 96; ++x) {
        uint8_t* p = &im.rgb[static_cast<size_t>(y * 96 + x) * 3];
        p[0] = static_cast<uint8_t>(90 + x / 3), p[1] = static_cast<uint8_t>(100 + y / 2), p[2] = 150;
        const int cx = 30 + drift, cy = 32;
        bool in = false;
        uint8_t c[3] = {0, 0, 0};
        if (scene == 0) in = (x - cx) * (x - cx) + (y - cy) * (y - cy) < 19 * 19, c[0] = 220, c[1] = 40, c[2] = 40;
        if (scene == 1) in = std::abs(x - cx - 10) < 16 && std::abs(y - cy) < 18, c[0] = 30, c[1] = 60, c[2] = 230;
        if (scene == 2) in = std::abs(x - cx - 5) < 30 && std::abs(y - cy) < 9, c[0] = 40, c[1] = 200, c[2] = 60;
        if (in) p[0] = c[0], p[1] = c[1], p[2] = c[2];
      }
    w.write(im);
  }
  w.close();
  return path;
}

TEST(VideoScenes, ForegroundChangesOnAStillBackgroundAreCuts) {
  // Every preview's score, to show the margin the default threshold has (docs: video.h).
  apps::VideoReader rd(make_foreground_video());
  apps::SceneDetector det;
  std::vector<double> cuts, within;
  rd.decode_with_preview(
      [&](const apps::DecodedFrame& f, const image::Image& p) {
        double sc = 0;
        const bool cut = det.push(p, &sc);
        if (f.index == 30 || f.index == 60) cuts.push_back(sc);
        else if (f.index > 0) within.push_back(sc);
        if (f.index > 0) {
          EXPECT_EQ(cut, f.index == 30 || f.index == 60) << "frame " << f.index << " score " << sc;
        }
      },
      [](const apps::DecodedFrame&) { return false; }, [](const apps::DecodedFrame&, const image::Image&) { return true; });
  ASSERT_EQ(cuts.size(), 2u);
  const double max_within = *std::max_element(within.begin(), within.end());
  std::printf("  cut scores %.4f %.4f, within scenes at most %.4f (threshold %.3f)\n", cuts[0], cuts[1], max_within,
              apps::kDefaultSceneThreshold);
  EXPECT_GT(std::min(cuts[0], cuts[1]), apps::kDefaultSceneThreshold);
  EXPECT_LT(max_within, apps::kDefaultSceneThreshold);

  // Scenes mode samples the first frame of each scene; the timeline is not smoothed across them.
  auto enc = colour_encoder();
  apps::VideoSampling s;
  s.scenes = true;
  auto v = apps::embed_video(make_foreground_video(), enc, s);
  ASSERT_EQ(v.scene_cuts.size(), 2u);
  EXPECT_NEAR(v.scene_cuts[0], 3.0, 1e-6);
  EXPECT_NEAR(v.scene_cuts[1], 6.0, 1e-6);
  EXPECT_EQ(v.t.size(), 3u);
  // fixed-step sampling finds the same cuts (they bound the smoothing)
  s.scenes = false;
  EXPECT_EQ(apps::embed_video(make_foreground_video(), enc, s).scene_cuts, v.scene_cuts);
}

TEST(VideoTimeline, SmoothingStopsAtSceneCuts) {
  // Label 0 for 4 frames, then a one-frame scene of label 1, then label 0 again: the short scene
  // survives smoothing only because the average does not reach across its cuts.
  std::vector<double> t;
  std::vector<std::vector<double>> sc;
  for (int i = 0; i < 9; ++i) {
    t.push_back(i);
    sc.push_back(i == 4 ? std::vector<double>{0.2, 0.8} : std::vector<double>{0.8, 0.2});
  }
  apps::TimelineOptions o;
  o.smooth = 3;
  EXPECT_EQ(apps::segment_timeline(t, sc, 9, o).size(), 1u);  // without cuts: smoothed away
  o.scene_cuts = {4.0, 5.0};
  auto s = apps::segment_timeline(t, sc, 9, o);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].end, 4.0);  // boundaries at the cuts, not between frames
  EXPECT_EQ(s[1].label, 1);
  EXPECT_EQ(s[1].end, 5.0);
}

TEST(VideoTimeline, SmoothingRemovesBlips) {
  std::vector<double> t;
  std::vector<std::vector<double>> sc;
  for (int i = 0; i < 10; ++i) {
    t.push_back(i);
    sc.push_back(i == 3 ? std::vector<double>{0.4, 0.6} : i < 6 ? std::vector<double>{0.9, 0.1} : std::vector<double>{0.1, 0.9});
  }
  apps::TimelineOptions o;
  o.smooth = 1;
  EXPECT_EQ(apps::segment_timeline(t, sc, 10, o).size(), 4u);
  o.smooth = 3;
  auto s = apps::segment_timeline(t, sc, 10, o);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].end, 5.5);
  EXPECT_EQ(s[1].end, 10);
  EXPECT_NEAR(s[1].score, 0.9, 1e-12);
  auto m = apps::best_matches({0, 1, 2, 3}, {0.1, 0.9, 0.8, 0.7}, 2, 1.5);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].t, 1);
  EXPECT_EQ(m[1].t, 3);  // 2 is within 1.5 s of the better match at 1
}

void expect_error(const std::string& path, const std::string& what) {
  try {
    apps::VideoReader r(path);
    r.decode([](const apps::DecodedFrame&) { return false; }, [](const apps::DecodedFrame&, const image::Image&) { return true; });
    FAIL() << path << ": no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(VideoReader, BadInputsGiveClearErrors) {
  auto dir = test::apps_temp_dir("video_bad");
  expect_error(dir + "/missing.mp4", "no such file");
  expect_error(dir, "is a directory");
  std::ofstream(dir + "/text.mp4") << "this is not a video at all, just some text\n";
  expect_error(dir + "/text.mp4", "not a video file FFmpeg can read");
  {
    std::ofstream f(dir + "/noise.mkv", std::ios::binary);
    for (int i = 0; i < 5000; ++i) f.put(static_cast<char>((i * 7919) % 251));
  }
  expect_error(dir + "/noise.mkv", "");
  // Truncated inside the header: the moov atom of an mp4 is at the end, so this has no streams.
  std::string full = read_file(make_video("v.mp4"));
  {
    std::ofstream f(dir + "/trunc.mp4", std::ios::binary);
    f.write(full.data(), 400);
  }
  expect_error(dir + "/trunc.mp4", "");
  expect_error(std::string(CLIPKIT_TEST_DATA) + "/images/chelsea.jpg", "not a video");
}

TEST(VideoTinyClip, EndToEndShapes) {
  auto emb = pipeline::Embedder::load(test::tiny_clip());
  apps::EmbedderEncoder enc(*emb);
  apps::VideoSampling s;
  s.every = 1.0;
  s.max_short_side = 64;
  auto v = apps::embed_video(make_video("v.webm"), enc, s);
  ASSERT_EQ(v.emb.shape, (Shape{6, 48}));
  apps::ZeroShotClassifier clf(enc, {"violence", "something else"}, {});
  auto a = apps::analyze_video(v, &clf, nullptr, "", {}, 0, 0);
  ASSERT_FALSE(a.segments.empty());
  EXPECT_EQ(a.segments.front().start, 0);
  EXPECT_NEAR(a.segments.back().end, 6.0, 0.11);
  for (auto& f : a.frame_scores) EXPECT_NEAR(f.scores[0] + f.scores[1], 1.0, 1e-9);
}

}  // namespace
}  // namespace clipkit
