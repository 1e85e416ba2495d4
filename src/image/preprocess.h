// Hugging Face CLIPImageProcessor reproduced exactly, with either backend:
//  - pil (default): the Pillow-based processor (transformers 4's default; what the released CLIP
//    checkpoints were trained with): Pillow resampling, HF's numpy center crop (floor offsets,
//    zero padding when the crop is larger), float32(double(v) * rescale) then (x - mean) / std;
//  - torchvision: transformers 5's default TorchVisionBackend on CPU: torchvision's antialiased
//    resize of the uint8 tensor (ATen's integer path), its center crop (offsets truncated toward
//    zero, padding floor((crop - size) / 2) before), then rescale and normalize fused as
//    (float(v) - mean * (1 / rescale)) / (std * (1 / rescale)) in float32.
// Both: shortest-edge resize with HF's size truncation, channels-first float32 out. Parameters
// come from a model's preprocessor_config.json; docs/images.md details both.
#pragma once
#include <string>
#include <utility>

#include "image/image.h"

namespace clipkit::image {

enum class ImageBackend { Pil, Torchvision };
const char* image_backend_name(ImageBackend b);  // "pil" | "torchvision"
// Throws clipkit::Error naming `what` (e.g. "--image-backend") and the accepted names.
ImageBackend image_backend_from_name(const std::string& name, const std::string& what);
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
  ImageBackend backend = ImageBackend::Pil;

  // Throws clipkit::Error naming `name` when this backend cannot reproduce these settings
  // (the torchvision backend resizes tensors with bicubic only).
  void check(const std::string& name) const;
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
  // pil: floor((resized - crop) / 2); torchvision: (resized - crop) / 2 truncated toward zero.
  // Negative = zero padding.
  int crop_top = 0, crop_left = 0;
  int out_w = 0, out_h = 0;          // output size: the crop, or the resized size without crop
};
Geometry plan_geometry(int width, int height, const PreprocessConfig& c);

// HF's get_resize_output_image_size(default_to_square=False): (width, height).
void shortest_edge_size(int width, int height, int shortest_edge, int* new_w, int* new_h);

// The uint8 HWC image after resize + center crop (before rescale), out_h x out_w x 3.
void resize_and_crop(const Image& img, const PreprocessConfig& c, uint8_t* out_hwc);

// The pixels of a width x height image that resize_and_crop() and preprocess() read (the filter
// spans of the kept window; empty when the crop keeps none of the image).
PixelRect preprocess_source(int width, int height, const PreprocessConfig& c);
// o with DecodeOptions::needed set to preprocess_source() for c: what decoding with it gives
// preprocess(c) equals a full decode's result, and JPEGs skip the rows and columns it never reads.
DecodeOptions decode_options_for(const PreprocessConfig& c, DecodeOptions o = {});

// The rescale + normalize step as a table: lut[channel][v] is the float32 the configured backend's
// processor computes for uint8 value v (see preprocess.cpp). The GPU applies the same table.
void normalize_lut(const PreprocessConfig& c, float lut[3][256]);

// out: float32 [3, H, W] of output_size(), channels-first, normalized. Throws Error (before
// writing) when the image does not become that size (do_center_crop false, another aspect ratio).
// Thread-safe, single-threaded.
void preprocess(const Image& img, const PreprocessConfig& c, float* out);

// Decode (decode_options_for(c, o)) + preprocess one file into out; throws Error "<path>: <reason>" on bad input.
void load_and_preprocess(const std::string& path, const PreprocessConfig& c, float* out, const DecodeOptions& o = {});

}  // namespace clipkit::image
