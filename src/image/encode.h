// Image encoding, for thumbnails, generated data sets and test fixtures: 8-bit RGB PNG through
// libpng, JPEG through libjpeg-turbo.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace clipkit::image {

// Writes `im` (HWC RGB uint8) as an 8-bit RGB PNG. Throws clipkit::Error "<path>: ..." when the
// image is empty/inconsistent or the file cannot be written.
void write_png(const std::string& path, const Image& im);

// How encode_jpeg lays the file out. The defaults are libjpeg's (YCbCr 4:2:0, baseline).
struct JpegEncoding {
  int quality = 85;                // 1..100
  int luma_h = 0, luma_v = 0;      // the luma's sampling factors against 1x1 chroma (1..4); 0 = libjpeg's 2x2
  bool grayscale = false;          // one gray component (the RGB converted by libjpeg)
  bool progressive = false;        // libjpeg's simple progression
  int restart_rows = 0;            // a restart marker every N MCU rows (0 = none)
};
// `im` (HWC RGB uint8) as a JPEG. Throws clipkit::Error on an empty/inconsistent image or a
// libjpeg error.
std::vector<uint8_t> encode_jpeg(const Image& im, const JpegEncoding& e);
inline std::vector<uint8_t> encode_jpeg(const Image& im, int quality = 85) { return encode_jpeg(im, JpegEncoding{quality}); }

}  // namespace clipkit::image
