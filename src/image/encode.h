// Image encoding, for generated data sets and test fixtures: 8-bit RGB PNG through libpng.
#pragma once
#include <string>

#include "image/image.h"

namespace clipkit::image {

// Writes `im` (HWC RGB uint8) as an 8-bit RGB PNG. Throws clipkit::Error "<path>: ..." when the
// image is empty/inconsistent or the file cannot be written.
void write_png(const std::string& path, const Image& im);

}  // namespace clipkit::image
