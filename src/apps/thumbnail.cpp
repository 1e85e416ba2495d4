#include "apps/thumbnail.h"

#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>

#include "core/base64.h"
#include "core/error.h"
#include "image/resample.h"
#include "io/tar_reader.h"

namespace clipkit::apps {

namespace {
struct JpegErr {
  jpeg_error_mgr mgr;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
};
void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jb, 1);
}
}  // namespace

std::vector<uint8_t> encode_jpeg(const image::Image& img, int quality) {
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * img.height * 3)
    fail("encode_jpeg: bad image {}x{}", img.width, img.height);
  jpeg_compress_struct c;
  JpegErr err;
  c.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (setjmp(err.jb)) {
    jpeg_destroy_compress(&c);
    std::free(buf);
    fail("encode_jpeg: {}", err.msg);
  }
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(img.width);
  c.image_height = static_cast<JDIMENSION>(img.height);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, std::clamp(quality, 1, 100), TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.rgb.data() + size_t(c.next_scanline) * img.width * 3);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

image::Image fit_within(const image::Image& img, int max_side) {
  const int m = std::max(img.width, img.height);
  if (m <= max_side || max_side <= 0) return img;
  return image::resized(img, std::max(1, static_cast<int>(int64_t(img.width) * max_side / m)),
                       std::max(1, static_cast<int>(int64_t(img.height) * max_side / m)), image::Resample::Bilinear);
}

std::string thumbnail_data_uri(const image::Image& img, int max_side, int quality) {
  auto jpg = encode_jpeg(fit_within(img, max_side), quality);
  return "data:image/jpeg;base64," + base64_encode(jpg.data(), jpg.size());
}

std::string thumbnail_data_uri(const std::string& path, int max_side, int quality) {
  const std::string bytes = io::read_path_bytes(path);  // a file, or a member of a .tar shard
  return thumbnail_data_uri(image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path),
                            max_side, quality);
}

}  // namespace clipkit::apps
