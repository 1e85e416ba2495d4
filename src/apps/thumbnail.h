// Small JPEG thumbnails as base64 data URIs, so reports and RAG answers are self-contained.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace clipkit::apps {

// Downscaled (aspect kept) so the longer side is at most max_side; never upscaled.
image::Image fit_within(const image::Image& img, int max_side);
// "data:image/jpeg;base64,..." of fit_within(img, max_side).
std::string thumbnail_data_uri(const image::Image& img, int max_side = 160, int quality = 80);
// Decodes the file and makes its thumbnail; throws clipkit::Error naming the file if unreadable.
std::string thumbnail_data_uri(const std::string& path, int max_side = 160, int quality = 80);

}  // namespace clipkit::apps
