// Many files at once: decode + preprocess in parallel across images (OpenMP, dynamic schedule;
// each image single-threaded). Bad files never stop the batch: their error is returned.
#pragma once
#include <string>
#include <vector>

#include "image/preprocess.h"

namespace clipkit::image {

// Floats per image in the output of preprocess(): 3 x output_size(). Throws when nothing fixes
// the size (do_resize and do_center_crop both false).
size_t floats_per_image(const PreprocessConfig& c);

// Writes image i to out + i * floats_per_image(c). Returns one entry per path: "" when it
// worked, else the error ("<path>: <reason>"); failed rows of `out` are left untouched.
std::vector<std::string> preprocess_files(const std::vector<std::string>& paths, const PreprocessConfig& c,
                                          const DecodeOptions& o, float* out);

}  // namespace clipkit::image
