// Video files through FFmpeg's libraries: a reader that decodes every frame in order (any container
// and codec the system's libavformat/libavcodec handle: mp4, mkv, webm, mov, avi, ...) and hands
// out RGB frames with their timestamps, and a small writer (used by tests and benchmarks to make
// videos with known content).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "image/image.h"

namespace clipkit::apps {

struct VideoInfo {
  std::string path, container, codec;
  int width = 0, height = 0;
  double fps = 0;       // average frame rate (0 if unknown)
  double duration = 0;  // seconds (container's, else stream's; 0 if unknown until decoded)
};

struct DecodedFrame {
  double t = 0;         // presentation time in seconds from the stream start
  int64_t index = 0;    // decode-order frame number
};

class VideoReader {
 public:
  // Throws clipkit::Error "<path>: ..." when the file is missing, not a container FFmpeg knows,
  // has no video stream, is a still image, or its codec has no decoder here. max_pixels > 0: frames
  // larger than this are refused (the decoders' own limit, also while probing the streams).
  explicit VideoReader(const std::string& path, int64_t max_pixels = 0);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;

  // Decodes every frame in presentation order. For each frame `want(f)` says whether its pixels are
  // needed; if so they are converted to RGB (scaled so the shorter side is at most max_short_side
  // when that is > 0, aspect kept) and `fn(f, img)` is called; fn returning false stops.
  // Returns the number of frames decoded. Throws if not one frame could be decoded; corrupt packets
  // in between are counted in decode_errors().
  int64_t decode(const std::function<bool(const DecodedFrame&)>& want,
                 const std::function<bool(const DecodedFrame&, const image::Image&)>& fn, int max_short_side = 0);
  // Same, but also gives a small (64x64) RGB thumbnail of every frame to `every` first (scene detection).
  int64_t decode_with_preview(const std::function<void(const DecodedFrame&, const image::Image& preview)>& every,
                              const std::function<bool(const DecodedFrame&)>& want,
                              const std::function<bool(const DecodedFrame&, const image::Image&)>& fn,
                              int max_short_side = 0);
  int64_t decode_errors() const;
  double last_frame_end() const;  // t of the last decoded frame + one frame duration

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class VideoWriter {
 public:
  // Container from the file name (mp4, mkv, webm, mov, avi); codec: mpeg4 (webm: vp8) unless given.
  VideoWriter(const std::string& path, int width, int height, int fps, const std::string& codec = "");
  ~VideoWriter();
  void write(const image::Image& rgb);  // width x height RGB
  void close();                         // flushes and writes the trailer (also done by the destructor)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipkit::apps
