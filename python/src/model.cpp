// clipkit.Model's C++ half: a pipeline::Embedder with its thread count. Each call takes what it
// needs from Python objects with the GIL held, then releases the GIL for decoding, tokenizing and
// the forward pass, and hands the embeddings back as numpy arrays over the library's buffers.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "core/error.h"
#include "core/parallel.h"
#include "image/preprocess.h"
#include "io/atomic_file.h"
#include "model/clip_model.h"
#include "model/config.h"
#include "backend/backend.h"
#include "pipeline/embedder.h"

namespace clipkit::py {
namespace {

namespace fs = std::filesystem;

// One image of a list handed to embed_images / preprocess: a file path, encoded bytes, or decoded
// RGB pixels (uint8 HxWx3, C order). Bytes and pixels point into Python objects the caller's list
// keeps alive for the whole call.
struct ImageSource {
  enum Kind { Path, Bytes, Pixels } kind = Path;
  std::string path;
  const uint8_t* data = nullptr;
  size_t size = 0;
  int width = 0, height = 0;
  std::string name;  // how errors name it
};

std::vector<ImageSource> image_sources(const pyb::list& images) {
  std::vector<ImageSource> out(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    pyb::handle h = images[i];
    ImageSource& s = out[i];
    if (pyb::isinstance<pyb::str>(h)) {
      s.kind = ImageSource::Path;
      s.path = h.cast<std::string>();
      s.name = s.path;
    } else if (pyb::isinstance<pyb::bytes>(h)) {
      s.kind = ImageSource::Bytes;
      char* p = nullptr;
      pyb::ssize_t n = 0;
      PyBytes_AsStringAndSize(h.ptr(), &p, &n);
      s.data = reinterpret_cast<const uint8_t*>(p);
      s.size = static_cast<size_t>(n);
      s.name = "images[" + std::to_string(i) + "] (bytes)";
    } else if (pyb::isinstance<pyb::array>(h)) {
      auto a = pyb::reinterpret_borrow<pyb::array>(h);
      const std::string where = "images[" + std::to_string(i) + "]";
      if (!a.dtype().is(pyb::dtype::of<uint8_t>()))
        throw BadValue(where + ": an image array must be uint8 (HxWx3 RGB), got dtype " +
                       pyb::str(a.dtype()).cast<std::string>());
      if (a.ndim() != 3 || a.shape(2) != 3 || a.shape(0) < 1 || a.shape(1) < 1)
        throw BadValue(where + ": an image array must have shape (H, W, 3) (RGB), got " +
                       pyb::str(a.attr("shape")).cast<std::string>());
      if (!(a.flags() & pyb::array::c_style)) throw BadValue(where + ": the image array must be C-contiguous");
      s.kind = ImageSource::Pixels;
      s.data = static_cast<const uint8_t*>(a.data());
      s.height = static_cast<int>(a.shape(0));
      s.width = static_cast<int>(a.shape(1));
      s.name = where;
    } else {
      throw BadValue("images[" + std::to_string(i) + "]: expected a path (str), bytes or a uint8 array, got " +
                     pyb::str(h.get_type().attr("__name__")).cast<std::string>());
    }
  }
  return out;
}

// Decodes + preprocesses one source into out (3 x S x S floats); throws Error naming the source.
void load_source(const ImageSource& s, const image::PreprocessConfig& pre, const image::DecodeOptions& d, float* out) {
  switch (s.kind) {
    case ImageSource::Path:
      image::load_and_preprocess(s.path, pre, out, d);  // what Embedder::embed_image_files does per file
      return;
    case ImageSource::Bytes:
      image::preprocess(image::decode_memory(s.data, s.size, s.name, image::decode_options_for(pre, d)), pre, out);
      return;
    case ImageSource::Pixels: {
      image::Image img;
      img.width = s.width;
      img.height = s.height;
      img.rgb.assign(s.data, s.data + static_cast<size_t>(s.width) * s.height * 3);
      image::preprocess(img, pre, out);
      return;
    }
  }
}

// Preprocesses sources [b, b + n) into px (threaded, one image per thread at a time), moves the
// readable rows to the front, and records the others. Returns how many rows are readable.
int64_t load_batch(const std::vector<ImageSource>& src, size_t b, int64_t n, const image::PreprocessConfig& pre,
                   const image::DecodeOptions& d, int64_t per, float* px, std::vector<int64_t>* kept,
                   std::vector<std::pair<int64_t, std::string>>* skipped) {
  std::vector<std::string> err(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    try {
      load_source(src[b + static_cast<size_t>(i)], pre, d, px + i * per);
    } catch (const std::exception& e) {
      err[static_cast<size_t>(i)] = e.what();
      if (err[static_cast<size_t>(i)].empty()) err[static_cast<size_t>(i)] = src[b + static_cast<size_t>(i)].name + ": unreadable";
    }
  }
  int64_t good = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = static_cast<int64_t>(b) + i;
    if (!err[static_cast<size_t>(i)].empty()) {
      skipped->emplace_back(idx, err[static_cast<size_t>(i)]);
      continue;
    }
    if (good != i) std::memmove(px + good * per, px + i * per, sizeof(float) * static_cast<size_t>(per));
    kept->push_back(idx);
    ++good;
  }
  return good;
}

using Skipped = std::vector<std::pair<int64_t, std::string>>;

class Model {
 public:
  Model(const std::string& dir, const std::string& device, const std::string& precision, int threads)
      : Model(load(dir, device, precision, threads), threads) {}
  Model(std::unique_ptr<pipeline::Embedder> e, int threads)
      : emb_(std::move(e)), threads_(threads), config_json_(read_file((fs::path(emb_->model().dir()) / "config.json").string())) {}

  // clipkit.load: FileNotFoundError for a missing folder or config.json, ValueError for arguments and
  // configurations clipkit does not take (model type, fields), clipkit.Error for the rest.
  static std::unique_ptr<pipeline::Embedder> load(const std::string& dir, const std::string& device,
                                                  const std::string& precision, int threads) {
    if (threads < 0) throw BadValue("threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
    const backend::Precision prec = precision_arg(precision);
    model::LoadOptions lo;
    lo.precision = prec;
    try {
      lo.device = backend::resolve_device(device);  // "auto": cuda when built and a GPU is present
      backend::backend_for(lo.device);                // an unknown or unbuilt device: ValueError
    } catch (const Error& e) {
      throw BadValue(e.what());
    }
    try {
      pyb::gil_scoped_release nogil;
      return pipeline::Embedder::load(dir, lo);
    } catch (const Error& e) {
      const fs::path config = fs::path(dir) / "config.json";
      if (!fs::is_directory(dir) || !fs::exists(config)) throw NotFound(e.what());
      try {
        model::ModelConfig::from_file(config.string());
      } catch (const Error&) {
        throw BadValue(e.what());
      }
      throw;
    }
  }

  int64_t dim() const { return emb_->dim(); }
  int image_size() const { return emb_->model().image_size(); }
  int64_t max_text_length() const { return emb_->model().has_text() ? emb_->max_text_tokens() : 0; }
  float logit_scale() const { return emb_->model().logit_scale(); }
  const std::string& config_json() const { return config_json_; }
  const std::string& dir() const { return emb_->model().dir(); }
  std::string architecture() const { return emb_->model().architecture(); }
  std::string precision() const { return backend::precision_name(emb_->model().precision()); }
  std::string precision_note() const { return emb_->model().backend().precision_note(emb_->model().precision()); }
  bool has_vision() const { return emb_->model().has_vision(); }
  bool has_text() const { return emb_->model().has_text(); }
  int threads() const { return threads_; }

  void set_image_backend(const std::string& name) {
    emb_->set_image_backend(image_backend_arg(name));
  }
  std::string image_backend() const { return image::image_backend_name(emb_->preprocess_config().backend); }

  pyb::array embed_texts(const std::vector<std::string>& texts, int batch_size, bool normalize, int64_t max_length) {
    pipeline::EmbedOptions o = options(batch_size, normalize);
    if (max_length < 0) throw BadValue("max_length must be positive, got " + std::to_string(max_length));
    o.max_text_tokens = max_length;
    Tensor t;
    {
      pyb::gil_scoped_release nogil;
      set_num_threads(threads_);
      std::lock_guard<std::mutex> lock(compute_mutex());
      t = texts.empty() ? Tensor::empty(DType::F32, {0, dim()}) : emb_->embed_texts(texts, o);
    }
    return to_numpy(std::move(t));
  }

  pyb::array embed_pixels(const pyb::array& pixels, int batch_size, bool normalize) {
    const pipeline::EmbedOptions o = options(batch_size, normalize);
    if (!has_vision()) throw Error(dir() + ": this model has no vision tower");
    const int64_t S = image_size();
    if (!pixels.dtype().is(pyb::dtype::of<float>()))
      throw BadValue("pixels must be float32, got dtype " + pyb::str(pixels.dtype()).cast<std::string>());
    if (pixels.ndim() != 4 || pixels.shape(1) != 3 || pixels.shape(2) != S || pixels.shape(3) != S)
      throw BadValue("pixels have shape " + pyb::str(pixels.attr("shape")).cast<std::string>() +
                     ", the model needs (N, 3, " + std::to_string(S) + ", " + std::to_string(S) + ")");
    if (!(pixels.flags() & pyb::array::c_style)) throw BadValue("pixels must be a C-contiguous array");
    const auto* px = static_cast<const float*>(pixels.data());
    const int64_t N = pixels.shape(0);
    Tensor t;
    {
      pyb::gil_scoped_release nogil;
      set_num_threads(threads_);
      std::lock_guard<std::mutex> lock(compute_mutex());
      t = N == 0 ? Tensor::empty(DType::F32, {0, dim()}) : emb_->embed_pixels(px, N, o);
    }
    return to_numpy(std::move(t));
  }

  // -> (embeddings of the readable images [kept, D], kept input indices, [(index, reason)])
  pyb::tuple embed_images(const pyb::list& images, int batch_size, bool normalize, bool exif_transpose) {
    const pipeline::EmbedOptions o = options(batch_size, normalize);
    if (!has_vision()) throw Error(dir() + ": this model has no vision tower");
    const std::vector<ImageSource> src = image_sources(images);
    image::DecodeOptions d = o.decode;
    d.exif_transpose = exif_transpose;
    std::vector<int64_t> kept;
    Skipped skipped;
    Tensor out;
    {
      pyb::gil_scoped_release nogil;
      set_num_threads(threads_);
      const int64_t S = image_size(), per = 3 * S * S;
      std::vector<Tensor> parts;
      std::vector<float> px;
      // as Embedder::embed_image_files: batches over the inputs, unreadable ones left out of each
      for (size_t b = 0; b < src.size(); b += static_cast<size_t>(o.batch_size)) {
        const int64_t n = std::min<int64_t>(o.batch_size, static_cast<int64_t>(src.size() - b));
        px.resize(static_cast<size_t>(n * per));
        const int64_t good = load_batch(src, b, n, emb_->preprocess_config(), d, per, px.data(), &kept, &skipped);
        if (good > 0) {
          std::lock_guard<std::mutex> lock(compute_mutex());
          parts.push_back(emb_->embed_pixels(px.data(), good, o));
        }
      }
      out = parts.size() == 1 ? std::move(parts[0]) : pipeline::concat_rows(parts, dim());
    }
    return pyb::make_tuple(to_numpy(std::move(out)), kept, skipped);
  }

  // -> (pixels [kept, 3, S, S] float32 as HF's CLIPImageProcessor makes them, kept, skipped)
  pyb::tuple preprocess(const pyb::list& images, bool exif_transpose) {
    if (!has_vision()) throw Error(dir() + ": this model has no vision tower");
    const std::vector<ImageSource> src = image_sources(images);
    image::DecodeOptions d;
    d.exif_transpose = exif_transpose;
    std::vector<int64_t> kept;
    Skipped skipped;
    const auto [H, W] = emb_->preprocess_config().output_size();
    const int64_t per = 3LL * H * W;
    Tensor px = Tensor::empty(DType::F32, {static_cast<int64_t>(src.size()), 3, H, W});
    {
      pyb::gil_scoped_release nogil;
      set_num_threads(threads_);
      const int64_t good = load_batch(src, 0, static_cast<int64_t>(src.size()), emb_->preprocess_config(), d, per,
                                      px.ptr<float>(), &kept, &skipped);
      px.shape[0] = good;  // the readable rows are at the front
    }
    return pyb::make_tuple(to_numpy(std::move(px)), kept, skipped);
  }

  // -> (input_ids, attention_mask) int64 [N, L]: special tokens, truncated to max_length (0 = the
  // model's limit), padded to the longest text or, with pad_to_max, to max_length.
  pyb::tuple tokenize(const std::vector<std::string>& texts, int64_t max_length, bool pad_to_max) {
    if (max_length < 0) throw BadValue("max_length must be positive, got " + std::to_string(max_length));
    if (max_length > text::kMaxPadLength)
      throw BadValue("max_length " + std::to_string(max_length) + " is above the limit " +
                     std::to_string(text::kMaxPadLength));
    const text::Tokenizer& tok = emb_->tokenizer();
    Tensor ids, mask;
    {
      pyb::gil_scoped_release nogil;
      set_num_threads(threads_);
      text::EncodeOptions eo;
      eo.max_length = static_cast<int>(max_length > 0 ? max_length : emb_->max_text_tokens());
      eo.pad_to_max_length = pad_to_max;
      const std::vector<text::Encoding> enc = tok.encode_batch(texts, eo);
      int64_t L = 0;
      for (auto& e : enc) L = std::max<int64_t>(L, static_cast<int64_t>(e.ids.size()));
      const int64_t N = static_cast<int64_t>(texts.size());
      ids = Tensor::empty(DType::I64, {N, L});
      mask = Tensor::zeros(DType::I64, {N, L});
      std::fill_n(ids.ptr<int64_t>(), N * L, static_cast<int64_t>(tok.pad_id()));
      for (int64_t i = 0; i < N; ++i) {
        const auto& e = enc[static_cast<size_t>(i)];
        std::copy(e.ids.begin(), e.ids.end(), ids.ptr<int64_t>() + i * L);
        std::copy(e.attention_mask.begin(), e.attention_mask.end(), mask.ptr<int64_t>() + i * L);
      }
    }
    return pyb::make_tuple(to_numpy(std::move(ids)), to_numpy(std::move(mask)));
  }

  const pipeline::Embedder& embedder() const { return *emb_; }

 private:
  static pipeline::EmbedOptions options(int batch_size, bool normalize) {
    if (batch_size < 1) throw BadValue("batch_size must be >= 1, got " + std::to_string(batch_size));
    pipeline::EmbedOptions o;
    o.batch_size = batch_size;
    o.normalize = normalize;
    return o;
  }

  std::unique_ptr<pipeline::Embedder> emb_;
  int threads_ = 0;
  std::string config_json_;
};

}  // namespace

const pipeline::Embedder& embedder_of(pyb::handle model) { return model.cast<const Model&>().embedder(); }
int threads_of(pyb::handle model) { return model.cast<const Model&>().threads(); }
pyb::object wrap_embedder(std::unique_ptr<pipeline::Embedder> e, int threads) {
  return pyb::cast(std::make_unique<Model>(std::move(e), threads));
}

void bind_model(pyb::module_& m) {
  pyb::class_<Model>(m, "Model")
      .def(pyb::init<const std::string&, const std::string&, const std::string&, int>(), pyb::arg("path"),
           pyb::arg("device") = "cpu", pyb::arg("precision") = "fp32", pyb::arg("threads") = 0)
      .def_property_readonly("embed_dim", &Model::dim)
      .def_property_readonly("image_size", &Model::image_size)
      .def_property_readonly("max_text_length", &Model::max_text_length)
      .def_property_readonly("logit_scale", &Model::logit_scale)
      .def_property_readonly("config_json", &Model::config_json)
      .def_property_readonly("path", &Model::dir)
      .def_property_readonly("architecture", &Model::architecture)
      .def_property_readonly("precision", &Model::precision)
      .def_property_readonly("precision_note", &Model::precision_note)
      .def_property_readonly("has_vision", &Model::has_vision)
      .def_property_readonly("has_text", &Model::has_text)
      .def_property_readonly("threads", &Model::threads)
      .def_property("image_backend", &Model::image_backend, &Model::set_image_backend)
      .def("embed_texts", &Model::embed_texts, pyb::arg("texts"), pyb::arg("batch_size"), pyb::arg("normalize"),
           pyb::arg("max_length"))
      .def("embed_pixels", &Model::embed_pixels, pyb::arg("pixels"), pyb::arg("batch_size"), pyb::arg("normalize"))
      .def("embed_images", &Model::embed_images, pyb::arg("images"), pyb::arg("batch_size"), pyb::arg("normalize"),
           pyb::arg("exif_transpose"))
      .def("preprocess", &Model::preprocess, pyb::arg("images"), pyb::arg("exif_transpose"))
      .def("tokenize", &Model::tokenize, pyb::arg("texts"), pyb::arg("max_length"), pyb::arg("pad_to_max_length"));
}

}  // namespace clipkit::py
