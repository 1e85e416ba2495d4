// Hugging Face CLIPImageProcessor (the Pillow-based one), reproduced exactly: shortest-edge
// resize with HF's size truncation, Pillow resampling, HF center crop (zero padding when the
// crop is larger), rescale, normalize, channels-first float32. Parameters come from a model's
// preprocessor_config.json.
#pragma once
#include <string>
#include <utility>

#include "image/image.h"

namespace clipkit::image {

// The largest size, crop or resize a preprocessor config may ask for.
inline constexpr int kMaxPreprocessSide = 8192;

struct PreprocessConfig {
  int shortest_edge = 224;  // size {"shortest_edge": N} (or a plain int)
  int crop_h = 224, crop_w = 224;
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true, do_convert_rgb = true;
  int resample = 3;  // PIL.Image.Resampling: 3 = BICUBIC
  double rescale_factor = 1.0 / 255;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  // size {"height": H, "width": W}: resize to exactly HxW (aspect not kept); 0 = shortest_edge mode.
  int resize_h = 0, resize_w = 0;

  // The (height, width) every preprocessed image has: the crop; without a center crop, the fixed
  // resize (size {"height", "width"}), or with a shortest-edge resize the square that square images
  // become (HF keeps the aspect then, so other images cannot batch and preprocess() refuses them).
  // {0, 0} when nothing fixes it (no resize and no crop).
  std::pair<int, int> output_size() const;

  // Throws clipkit::Error naming the file on unreadable JSON or unsupported settings.
  static PreprocessConfig from_file(const std::string& preprocessor_config_json);
  static PreprocessConfig from_json_text(const std::string& json_text, const std::string& name_for_errors);
  // --size S: shortest edge = crop = S, CLIP mean/std, bicubic.
  static PreprocessConfig clip_default(int size);
};

// Where an image of width x height ends up (all in pixels of the resized image).
struct Geometry {
  int resized_w = 0, resized_h = 0;  // after resize (= input size when do_resize is false)
  int crop_top = 0, crop_left = 0;   // floor((resized - crop) / 2); negative = zero padding
  int out_w = 0, out_h = 0;          // output size: the crop, or the resized size without crop
};
Geometry plan_geometry(int width, int height, const PreprocessConfig& c);

// HF's get_resize_output_image_size(default_to_square=False): (width, height).
void shortest_edge_size(int width, int height, int shortest_edge, int* new_w, int* new_h);

// The uint8 HWC image after resize + center crop (before rescale), out_h x out_w x 3.
void resize_and_crop(const Image& img, const PreprocessConfig& c, uint8_t* out_hwc);

// out: float32 [3, H, W] of output_size(), channels-first, normalized. Throws Error (before
// writing) when the image does not become that size (do_center_crop false, another aspect ratio).
// Thread-safe, single-threaded.
void preprocess(const Image& img, const PreprocessConfig& c, float* out);

// Decode + preprocess one file into out; throws Error "<path>: <reason>" on bad input.
void load_and_preprocess(const std::string& path, const PreprocessConfig& c, float* out, const DecodeOptions& o = {});

}  // namespace clipkit::image
