#include "apps/video_io.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace clipkit::apps {

namespace {

std::string av_error(int e) {
  char b[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(e, b, sizeof b);
  return b;
}

void quiet_ffmpeg() {
  // Errors reach the user as clipkit errors naming the file, not as FFmpeg's log lines.
  static bool once = [] {
    av_log_set_level(AV_LOG_QUIET);
    return true;
  }();
  (void)once;
}

}  // namespace

struct VideoReader::Impl {
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  SwsContext* sws_small = nullptr;
  int stream = -1;
  VideoInfo info;
  AVRational tb{1, 1};
  int64_t start_pts = 0;
  double frame_dur = 0;
  int64_t errors = 0;
  double last_end = 0;
  bool decoded_once = false;

  ~Impl() {
    sws_freeContext(sws);
    sws_freeContext(sws_small);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }

  image::Image to_rgb(SwsContext** ctx, int w, int h, int flags) {
    image::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    *ctx = sws_getCachedContext(*ctx, frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), w, h,
                                AV_PIX_FMT_RGB24, flags, nullptr, nullptr, nullptr);
    if (!*ctx) fail("{}: cannot convert {}x{} frames of pixel format {} to RGB", info.path, frame->width,
                    frame->height, static_cast<int>(frame->format));
    uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
    int stride[4] = {w * 3, 0, 0, 0};
    sws_scale(*ctx, frame->data, frame->linesize, 0, frame->height, dst, stride);
    return img;
  }
};

VideoReader::VideoReader(const std::string& path, int64_t max_pixels) : impl_(std::make_unique<Impl>()) {
  quiet_ffmpeg();
  auto& m = *impl_;
  m.info.path = path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: no such file", path);
  if (std::filesystem::is_directory(path, ec)) fail("{}: is a directory, not a video file", path);
  int r = avformat_open_input(&m.fmt, path.c_str(), nullptr, nullptr);
  if (r < 0) fail("{}: not a video file FFmpeg can read ({})", path, av_error(r));
  std::vector<AVDictionary*> probe(m.fmt->nb_streams, nullptr);
  if (max_pixels > 0)
    for (auto& d : probe) av_dict_set_int(&d, "max_pixels", max_pixels, 0);
  r = avformat_find_stream_info(m.fmt, max_pixels > 0 ? probe.data() : nullptr);
  for (auto& d : probe) av_dict_free(&d);
  if (r < 0) fail("{}: corrupt or unsupported video: cannot read stream information ({})", path, av_error(r));
  const AVCodec* codec = nullptr;
  r = av_find_best_stream(m.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (r == AVERROR_STREAM_NOT_FOUND) fail("{}: no video stream in this file", path);
  if (r == AVERROR_DECODER_NOT_FOUND || (r >= 0 && !codec)) {
    int s = av_find_best_stream(m.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    const char* name = s >= 0 ? avcodec_get_name(m.fmt->streams[s]->codecpar->codec_id) : "unknown";
    fail("{}: unsupported video codec \"{}\" (no decoder in this FFmpeg build)", path, name);
  }
  if (r < 0) fail("{}: cannot select a video stream ({})", path, av_error(r));
  m.stream = r;
  AVStream* st = m.fmt->streams[r];
  // a still image whatever the file is called: FFmpeg's image2 demuxer (found by the extension) or
  // one of its *_pipe image demuxers (found by the content: jpeg_pipe, png_pipe, webp_pipe, ...)
  const std::string demuxer = m.fmt->iformat->name;
  if (demuxer.find("image2") != std::string::npos || demuxer.ends_with("_pipe") ||
      (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
    fail("{}: a still image, not a video", path);
  m.dec = avcodec_alloc_context3(codec);
  if (!m.dec || avcodec_parameters_to_context(m.dec, st->codecpar) < 0) fail("{}: cannot set up the decoder", path);
  if (max_pixels > 0) {
    if (int64_t{st->codecpar->width} * st->codecpar->height > max_pixels)
      fail("{}: frames of {}x{} exceed the limit of {} pixels", path, st->codecpar->width, st->codecpar->height,
           max_pixels);
    m.dec->max_pixels = max_pixels;
  }
  m.dec->thread_count = std::max(1, num_threads());
  r = avcodec_open2(m.dec, codec, nullptr);
  if (r < 0) fail("{}: cannot open the {} decoder ({})", path, codec->name, av_error(r));
  if (m.dec->width <= 0 || m.dec->height <= 0) fail("{}: video stream has no frame size (corrupt header?)", path);
  m.frame = av_frame_alloc();
  m.pkt = av_packet_alloc();
  m.tb = st->time_base;
  m.start_pts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
  AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  m.info.fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
  m.frame_dur = m.info.fps > 0 ? 1.0 / m.info.fps : 0;
  m.info.container = m.fmt->iformat->name;
  m.info.codec = codec->name;
  m.info.width = m.dec->width;
  m.info.height = m.dec->height;
  if (m.fmt->duration != AV_NOPTS_VALUE && m.fmt->duration > 0)
    m.info.duration = double(m.fmt->duration) / AV_TIME_BASE;
  else if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
    m.info.duration = double(st->duration) * av_q2d(st->time_base);
}

VideoReader::~VideoReader() = default;
const VideoInfo& VideoReader::info() const { return impl_->info; }
int64_t VideoReader::decode_errors() const { return impl_->errors; }
double VideoReader::last_frame_end() const { return impl_->last_end; }

int64_t VideoReader::decode(const std::function<bool(const DecodedFrame&)>& want,
                            const std::function<bool(const DecodedFrame&, const image::Image&)>& fn,
                            int max_short_side) {
  return decode_with_preview(nullptr, want, fn, max_short_side);
}

int64_t VideoReader::decode_with_preview(
    const std::function<void(const DecodedFrame&, const image::Image&)>& every,
    const std::function<bool(const DecodedFrame&)>& want,
    const std::function<bool(const DecodedFrame&, const image::Image&)>& fn, int max_short_side) {
  auto& m = *impl_;
  if (m.decoded_once) fail("{}: VideoReader decodes a file once; open it again", m.info.path);
  m.decoded_once = true;
  int64_t n = 0;
  bool stop = false;
  auto drain = [&]() {
    while (!stop) {
      int r = avcodec_receive_frame(m.dec, m.frame);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) {
        ++m.errors;
        return;
      }
      if (m.frame->decode_error_flags || (m.frame->flags & AV_FRAME_FLAG_CORRUPT)) ++m.errors;
      int64_t ts = m.frame->best_effort_timestamp;
      DecodedFrame f;
      f.index = n++;
      f.t = ts != AV_NOPTS_VALUE ? double(ts - m.start_pts) * av_q2d(m.tb) : double(f.index) * m.frame_dur;
      f.t = std::max(0.0, f.t);
      m.last_end = std::max(m.last_end, f.t + m.frame_dur);
      if (every) every(f, m.to_rgb(&m.sws_small, 64, 64, SWS_AREA));
      if (want(f)) {
        int w = m.frame->width, h = m.frame->height;
        const int s = std::min(w, h);
        int flags = SWS_BICUBIC;
        if (max_short_side > 0 && s > max_short_side) {
          w = std::max(1, static_cast<int>(std::lround(double(w) * max_short_side / s)));
          h = std::max(1, static_cast<int>(std::lround(double(h) * max_short_side / s)));
          flags = SWS_AREA;
        }
        if (!fn(f, m.to_rgb(&m.sws, w, h, flags))) stop = true;
      }
      av_frame_unref(m.frame);
    }
  };
  while (!stop) {
    int r = av_read_frame(m.fmt, m.pkt);
    if (r < 0) {
      if (r != AVERROR_EOF) ++m.errors;
      break;
    }
    if (m.pkt->stream_index == m.stream) {
      int s = avcodec_send_packet(m.dec, m.pkt);
      if (s < 0 && s != AVERROR(EAGAIN)) ++m.errors;
      drain();
    }
    av_packet_unref(m.pkt);
  }
  if (!stop) {
    avcodec_send_packet(m.dec, nullptr);
    drain();
  }
  if (n == 0) fail("{}: corrupt video: no frame could be decoded", m.info.path);
  if (m.info.duration <= 0) m.info.duration = m.last_end;
  return n;
}

struct VideoWriter::Impl {
  std::string path;
  AVFormatContext* oc = nullptr;
  AVCodecContext* enc = nullptr;
  AVStream* st = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* pkt = nullptr;
  SwsContext* sws = nullptr;
  int64_t next_pts = 0;
  bool open = false;

  void drain() {
    while (true) {
      int r = avcodec_receive_packet(enc, pkt);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) fail("{}: encoding failed ({})", path, av_error(r));
      if (pkt->duration <= 0) pkt->duration = 1;  // one frame; without it mp4 edit lists cut the last frame
      av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
      pkt->stream_index = st->index;
      r = av_interleaved_write_frame(oc, pkt);
      if (r < 0) fail("{}: write failed ({})", path, av_error(r));
    }
  }
  void release() {
    sws_freeContext(sws);
    sws = nullptr;
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
      oc = nullptr;
    }
  }
  ~Impl() { release(); }
};

VideoWriter::VideoWriter(const std::string& path, int width, int height, int fps, const std::string& codec)
    : impl_(std::make_unique<Impl>()) {
  quiet_ffmpeg();
  auto& m = *impl_;
  m.path = path;
  if (width <= 0 || height <= 0 || width % 2 || height % 2) fail("{}: frame size {}x{} must be even", path, width, height);
  if (fps <= 0) fail("{}: fps must be positive", path);
  int r = avformat_alloc_output_context2(&m.oc, nullptr, nullptr, path.c_str());
  if (r < 0 || !m.oc) fail("{}: no container for this file name ({})", path, av_error(r));
  std::string cname = codec;
  if (cname.empty()) cname = std::string(m.oc->oformat->name).find("webm") != std::string::npos ? "libvpx" : "mpeg4";
  const AVCodec* c = avcodec_find_encoder_by_name(cname.c_str());
  if (!c) fail("{}: no encoder \"{}\" in this FFmpeg build", path, cname);
  m.st = avformat_new_stream(m.oc, nullptr);
  m.enc = avcodec_alloc_context3(c);
  m.enc->width = width;
  m.enc->height = height;
  m.enc->time_base = AVRational{1, fps};
  m.enc->framerate = AVRational{fps, 1};
  m.enc->pix_fmt = AV_PIX_FMT_YUV420P;
  m.enc->gop_size = fps;
  m.enc->max_b_frames = 0;
  m.enc->bit_rate = 4000000;
  if (cname == "mpeg4") {
    m.enc->flags |= AV_CODEC_FLAG_QSCALE;
    m.enc->global_quality = FF_QP2LAMBDA * 2;
  }
  if (m.oc->oformat->flags & AVFMT_GLOBALHEADER) m.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  r = avcodec_open2(m.enc, c, nullptr);
  if (r < 0) fail("{}: cannot open encoder {} ({})", path, cname, av_error(r));
  avcodec_parameters_from_context(m.st->codecpar, m.enc);
  m.st->time_base = m.enc->time_base;
  r = avio_open(&m.oc->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (r < 0) fail("{}: cannot open for writing ({})", path, av_error(r));
  r = avformat_write_header(m.oc, nullptr);
  if (r < 0) fail("{}: cannot write the header ({})", path, av_error(r));
  m.frame = av_frame_alloc();
  m.frame->format = AV_PIX_FMT_YUV420P;
  m.frame->width = width;
  m.frame->height = height;
  if (av_frame_get_buffer(m.frame, 0) < 0) fail("{}: out of memory", path);
  m.pkt = av_packet_alloc();
  m.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr,
                         nullptr, nullptr);
  m.open = true;
}

VideoWriter::~VideoWriter() {
  try {
    close();
  } catch (...) {
  }
}

void VideoWriter::write(const image::Image& img) {
  auto& m = *impl_;
  if (!m.open) fail("{}: writer is closed", m.path);
  if (img.width != m.enc->width || img.height != m.enc->height)
    fail("{}: frame is {}x{}, the video is {}x{}", m.path, img.width, img.height, m.enc->width, m.enc->height);
  if (av_frame_make_writable(m.frame) < 0) fail("{}: out of memory", m.path);
  const uint8_t* src[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
  int stride[4] = {img.width * 3, 0, 0, 0};
  sws_scale(m.sws, src, stride, 0, img.height, m.frame->data, m.frame->linesize);
  m.frame->pts = m.next_pts++;
  int r = avcodec_send_frame(m.enc, m.frame);
  if (r < 0) fail("{}: encoding failed ({})", m.path, av_error(r));
  m.drain();
}

void VideoWriter::close() {
  auto& m = *impl_;
  if (!m.open) return;
  m.open = false;
  avcodec_send_frame(m.enc, nullptr);
  m.drain();
  av_write_trailer(m.oc);
  m.release();
}

}  // namespace clipkit::apps
