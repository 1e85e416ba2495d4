#include "image/encode.h"

#include <png.h>
// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace clipkit::image {

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

std::vector<uint8_t> encode_jpeg(const Image& img, const JpegEncoding& e) {
  if (img.width <= 0 || img.height <= 0 || img.rgb.size() != size_t(img.width) * img.height * 3)
    fail("encode_jpeg: bad image {}x{}", img.width, img.height);
  if (e.luma_h < 0 || e.luma_h > 4 || e.luma_v < 0 || e.luma_v > 4 || e.restart_rows < 0)
    fail("encode_jpeg: bad layout (luma sampling {}x{}, restart rows {})", e.luma_h, e.luma_v, e.restart_rows);
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
  jpeg_set_quality(&c, std::clamp(e.quality, 1, 100), TRUE);
  if (e.grayscale) {
    jpeg_set_colorspace(&c, JCS_GRAYSCALE);
  } else if (e.luma_h > 0 || e.luma_v > 0) {
    c.comp_info[0].h_samp_factor = e.luma_h > 0 ? e.luma_h : 2;
    c.comp_info[0].v_samp_factor = e.luma_v > 0 ? e.luma_v : 2;
  }
  if (e.progressive) jpeg_simple_progression(&c);
  c.restart_in_rows = e.restart_rows;
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

void write_png(const std::string& path, const Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3)
    fail("{}: cannot write an empty or inconsistent {}x{} image", path, im.width, im.height);
  png_image pi;
  std::memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  pi.width = static_cast<png_uint_32>(im.width);
  pi.height = static_cast<png_uint_32>(im.height);
  pi.format = PNG_FORMAT_RGB;
  // libpng's simplified API reports errors in the struct (no longjmp across our frames).
  if (!png_image_write_to_file(&pi, path.c_str(), 0, im.rgb.data(), 0, nullptr)) {
    std::string msg = pi.message;
    png_image_free(&pi);
    fail("{}: cannot write PNG: {}", path, msg);
  }
}

}  // namespace clipkit::image
