#include "server/server.h"

#include <httplib.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "backend/backend.h"
#include "core/error.h"
#include "core/parallel.h"
#include "image/batch.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "index/query.h"
#include "io/atomic_file.h"
#include "server/api_error.h"
#include "server/app_endpoints.h"
#include "server/web_page.h"

namespace clipkit::server {

namespace {

using json = nlohmann::json;

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, {{"error", {{"status", status}, {"message", msg}}}});
}

json parse_body(const httplib::Request& req) {
  if (req.body.empty()) throw ApiError(400, "request body is empty; send a JSON object");
  auto j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "request body must be a JSON object");
  return j;
}

json rows_json(const Tensor& t) {
  json out = json::array();
  for (int64_t i = 0; i < t.dim(0); ++i)
    out.push_back(std::vector<float>(t.ptr<float>() + i * t.dim(1), t.ptr<float>() + (i + 1) * t.dim(1)));
  return out;
}

const char* mime_of(image::Format f) {
  switch (f) {
    case image::Format::Jpeg: return "image/jpeg";
    case image::Format::Png: return "image/png";
    case image::Format::Webp: return "image/webp";
    case image::Format::Gif: return "image/gif";
    case image::Format::Bmp: return "image/bmp";
    default: return "application/octet-stream";
  }
}

}  // namespace

bool base64_decode(const std::string& in0, std::string* out) {
  std::string_view in(in0);
  if (in.starts_with("data:")) {
    auto c = in.find(";base64,");
    if (c == std::string_view::npos) return false;
    in = in.substr(c + 8);
  }
  static int8_t tab[256];
  static bool init = [] {
    std::fill(std::begin(tab), std::end(tab), int8_t{-1});
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) tab[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    tab[static_cast<uint8_t>('-')] = 62;  // URL-safe alphabet too
    tab[static_cast<uint8_t>('_')] = 63;
    return true;
  }();
  (void)init;
  out->clear();
  out->reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  bool pad = false;
  for (char ch : in) {
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
    if (ch == '=') { pad = true; continue; }
    if (pad) return false;  // data after padding
    int v = tab[static_cast<uint8_t>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits < 6;  // a lone 6-bit group cannot end valid base64
}

struct Server::Impl {
  ServerOptions o;
  std::unique_ptr<index::Library> lib;
  std::unique_ptr<pipeline::Embedder> emb;
  httplib::Server http;
  int bound_port = -1;

  // ---- the batching queue: every model call runs on `model_thread` ----
  struct Job {
    bool text = false;
    std::vector<std::string> texts;
    std::vector<float> px;  // n * per
    int64_t n = 0;
    std::promise<Tensor> done;
  };
  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<std::shared_ptr<Job>> queue;
  bool quit = false;
  std::thread model_thread;

  // ---- metrics ----
  std::mutex mmu;
  std::map<std::pair<std::string, int>, int64_t> requests;
  std::map<std::string, std::pair<double, int64_t>> durations;  // endpoint -> (sum s, count)
  std::atomic<int64_t> batches_text{0}, batches_image{0}, rows_text{0}, rows_image{0};

  // The applications' view of the model: every call goes through the batching queue.
  struct QueueEncoder final : apps::Encoder {
    Impl* s;
    explicit QueueEncoder(Impl* impl) : s(impl) {}
    int64_t dim() const override { return s->emb->dim(); }
    float logit_scale() const override { return std::exp(s->emb->model().logit_scale()); }
    Tensor encode_texts(const std::vector<std::string>& texts) const override {
      if (texts.empty()) return Tensor::zeros(DType::F32, {0, dim()});
      return s->embed_texts(texts);
    }
    Tensor encode_images(const std::vector<const image::Image*>& images) const override {
      return s->embed_images(images);
    }
  };
  std::unique_ptr<QueueEncoder> qenc;
  std::unique_ptr<AppEndpoints> app_routes;

  explicit Impl(const ServerOptions& opts) : o(opts) {
    lib = index::Library::open(o.index_dir);
    emb = index::load_query_model(*lib, o.model_dir, {backend::precision_from_name(o.precision), o.device});
    qenc = std::make_unique<QueueEncoder>(this);
    AppLimits al;
    al.max_labels = o.max_prompts;
    al.max_k = o.max_k;
    const auto& pc = emb->preprocess_config();
    al.video_short_side = std::max(pc.shortest_edge, pc.crop_h);
    app_routes = std::make_unique<AppEndpoints>(*lib, *qenc, al);
    model_thread = std::thread([this] { model_loop(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> l(qmu);
      quit = true;
    }
    qcv.notify_all();
    if (model_thread.joinable()) model_thread.join();
  }

  void model_loop() {
    set_num_threads(o.model_threads);
    while (true) {
      std::vector<std::shared_ptr<Job>> batch;
      {
        std::unique_lock<std::mutex> l(qmu);
        qcv.wait(l, [&] { return quit || !queue.empty(); });
        if (quit && queue.empty()) return;
        // take the oldest job and every waiting job of the same kind that fits in one batch
        batch.push_back(queue.front());
        queue.pop_front();
        int64_t rows = batch[0]->n;
        for (auto it = queue.begin(); it != queue.end();) {
          if ((*it)->text == batch[0]->text && rows + (*it)->n <= o.max_batch) {
            rows += (*it)->n;
            batch.push_back(*it);
            it = queue.erase(it);
          } else {
            ++it;
          }
        }
      }
      try {
        pipeline::EmbedOptions eo;
        Tensor all;
        int64_t rows = 0;
        if (batch[0]->text) {
          std::vector<std::string> texts;
          for (auto& j : batch) texts.insert(texts.end(), j->texts.begin(), j->texts.end());
          rows = static_cast<int64_t>(texts.size());
          all = embed_text_bucketed(texts);
          batches_text++;
          rows_text += rows;
        } else {
          const size_t per = image::floats_per_image(emb->preprocess_config());
          for (auto& j : batch) rows += j->n;
          std::vector<float> px(static_cast<size_t>(rows) * per);
          int64_t r = 0;
          for (auto& j : batch) {
            std::copy(j->px.begin(), j->px.end(), px.begin() + static_cast<int64_t>(r * per));
            r += j->n;
          }
          eo.batch_size = static_cast<int>(std::max<int64_t>(1, rows));
          all = emb->embed_pixels(px.data(), rows, eo);
          batches_image++;
          rows_image += rows;
        }
        const int64_t D = all.dim(1);
        int64_t r = 0;
        for (auto& j : batch) {
          Tensor t = Tensor::empty(DType::F32, {j->n, D});
          std::copy(all.ptr<float>() + r * D, all.ptr<float>() + (r + j->n) * D, t.ptr<float>());
          r += j->n;
          j->done.set_value(std::move(t));
        }
      } catch (...) {
        for (auto& j : batch) j->done.set_exception(std::current_exception());
      }
    }
  }

  // Texts padded to a few fixed shapes (rows to a power of two, tokens to a multiple of 16): the
  // model caches its kernels per shape, and request batches would otherwise bring a new shape
  // almost every time. Padding tokens are masked and padding rows dropped, so the embeddings are
  // those of embed_texts.
  Tensor embed_text_bucketed(const std::vector<std::string>& texts) {
    std::vector<int32_t> ids, mask;
    int64_t L;
    emb->tokenize(texts, &ids, &mask, &L);
    const int64_t B = static_cast<int64_t>(texts.size());
    const int64_t Lb = std::min<int64_t>(std::max<int64_t>(L, emb->max_text_tokens()), (L + 15) / 16 * 16);
    int64_t Bb = 1;
    while (Bb < B) Bb *= 2;
    const int32_t pad = emb->tokenizer().pad_id();
    std::vector<int32_t> pid(static_cast<size_t>(Bb * Lb), pad), pm(static_cast<size_t>(Bb * Lb), 0);
    for (int64_t b = 0; b < Bb; ++b) {
      const int64_t src = b < B ? b : 0;  // spare rows repeat row 0 (an all-masked row is undefined)
      std::copy_n(ids.begin() + src * L, L, pid.begin() + b * Lb);
      std::copy_n(mask.begin() + src * L, L, pm.begin() + b * Lb);
    }
    Tensor f = emb->model().text_features(pid.data(), pm.data(), Bb, Lb);
    Tensor out = Tensor::empty(DType::F32, {B, f.dim(1)});
    std::copy_n(f.ptr<float>(), B * f.dim(1), out.ptr<float>());
    model::l2_normalize_rows(out.ptr<float>(), B, out.dim(1));
    return out;
  }

  Tensor run_model(std::shared_ptr<Job> j) {
    auto f = j->done.get_future();
    {
      std::lock_guard<std::mutex> l(qmu);
      queue.push_back(std::move(j));
    }
    qcv.notify_one();
    return f.get();
  }

  Tensor embed_texts(std::vector<std::string> texts) {
    if (!emb->model().has_text()) throw ApiError(400, "this model has no text tower");
    auto j = std::make_shared<Job>();
    j->text = true;
    j->n = static_cast<int64_t>(texts.size());
    j->texts = std::move(texts);
    return run_model(std::move(j));
  }

  // Decodes + preprocesses here (on the request thread), embeds through the queue.
  Tensor embed_image_bytes(const std::string& bytes, const std::string& name) {
    if (!emb->model().has_vision()) throw ApiError(400, "this model has no vision tower");
    if (bytes.empty()) throw ApiError(400, "the image is empty");
    image::Image img;
    try {
      img = image::decode_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("cannot read the image: {}", e.what()));
    }
    return embed_images({&img});
  }

  // Preprocesses here (on the request thread), embeds through the queue as one job.
  Tensor embed_images(const std::vector<const image::Image*>& images) {
    if (images.empty()) return Tensor::zeros(DType::F32, {0, emb->dim()});
    if (!emb->model().has_vision()) throw ApiError(400, "this model has no vision tower");
    const size_t per = image::floats_per_image(emb->preprocess_config());
    auto j = std::make_shared<Job>();
    j->n = static_cast<int64_t>(images.size());
    j->px.resize(per * images.size());
    for (size_t i = 0; i < images.size(); ++i) image::preprocess(*images[i], emb->preprocess_config(), j->px.data() + i * per);
    return run_model(std::move(j));
  }

  // The image of a request: multipart field "image", or JSON "image_base64".
  std::string request_image(const httplib::Request& req, const json* body) {
    if (req.is_multipart_form_data()) {
      if (!req.has_file("image")) throw ApiError(400, "multipart request has no \"image\" field");
      return req.get_file_value("image").content;
    }
    json j = body ? *body : parse_body(req);
    if (!j.contains("image_base64") || !j["image_base64"].is_string())
      throw ApiError(400, "send the image as multipart field \"image\" or JSON {\"image_base64\": \"...\"}");
    std::string bytes;
    if (!base64_decode(j["image_base64"].get<std::string>(), &bytes))
      throw ApiError(400, "\"image_base64\" is not valid base64");
    return bytes;
  }

  // ---- endpoints ----
  void embed_text(const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    auto texts = string_list(body, "texts", o.max_texts);
    send_json(res, 200, {{"embeddings", rows_json(embed_texts(std::move(texts)))}});
  }

  void embed_image(const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, {{"embeddings", rows_json(embed_image_bytes(request_image(req, nullptr), "upload"))}});
  }

  // The request's parameters as one JSON object: the JSON body, or a multipart form's fields (the
  // "image"/"video" files excluded; a value that parses as JSON is taken as JSON, except "text" and
  // "query", which stay strings).
  json request_params(const httplib::Request& req) {
    if (!req.is_multipart_form_data()) return parse_body(req);
    json j = json::object();
    for (auto& [name, f] : req.files) {
      if (name == "image" || name == "video") continue;
      json v = name == "text" || name == "query" ? json(json::value_t::discarded) : json::parse(f.content, nullptr, false);
      j[name] = v.is_discarded() ? json(f.content) : v;
    }
    return j;
  }

  // The query a request names: exactly one of "text" (when allowed), "image_base64", "image_id" or a
  // multipart "image". *query gets the text or a description of the image, *bytes the image's bytes
  // (empty for text), *id the indexed image's id (-1 otherwise).
  Tensor query_embedding(const httplib::Request& req, const json& body, bool allow_text, std::string* query,
                         std::string* bytes, int64_t* id) {
    const bool multipart_image = req.is_multipart_form_data() && req.has_file("image");
    const int given = (allow_text && body.contains("text")) + body.contains("image_base64") + body.contains("image_id") +
                      multipart_image;
    *id = -1;
    bytes->clear();
    if (given != 1)
      throw ApiError(400, allow_text ? "give exactly one of \"text\", \"image_base64\", \"image_id\" (or multipart \"image\")"
                                     : "give exactly one of \"image_base64\", \"image_id\" (or multipart \"image\")");
    if (allow_text && body.contains("text")) {
      if (!body["text"].is_string() || body["text"].get<std::string>().empty())
        throw ApiError(400, "\"text\" must be a non-empty string");
      *query = body["text"].get<std::string>();
      return embed_texts({*query});
    }
    if (body.contains("image_id")) {
      if (!body["image_id"].is_number_integer()) throw ApiError(400, "\"image_id\" must be an integer");
      index::ImageRecord r;
      if (!lib->get(body["image_id"].get<int64_t>(), &r)) throw ApiError(404, "no image with that id");
      try {
        *bytes = read_file(r.path);
      } catch (const Error&) {
        throw ApiError(404, "the indexed file is no longer readable");
      }
      *id = r.id;
      *query = "image:" + std::to_string(r.id);
      return embed_image_bytes(*bytes, "image " + std::to_string(r.id));
    }
    *bytes = request_image(req, &body);
    *query = "image:upload";
    return embed_image_bytes(*bytes, "upload");
  }

  void search(const httplib::Request& req, httplib::Response& res) {
    json body = request_params(req);
    const int64_t k = int_field(body, "k", 10, 1, o.max_k);
    index::Filter f;
    try {
      f = index::Filter::from_json(body.value("filter", json()));
    } catch (const Error& e) {
      throw ApiError(400, e.what());
    }
    std::string query, bytes;
    int64_t id;
    Tensor q = query_embedding(req, body, true, &query, &bytes, &id);
    send_json(res, 200, index::results_json(lib->search(q.ptr<float>(), k, f)));
  }

  // ---- the applications (server/app_endpoints.h) ----
  void classify(const httplib::Request& req, httplib::Response& res) {
    json body = request_params(req);
    std::string query, bytes;
    int64_t id;
    Tensor q = query_embedding(req, body, false, &query, &bytes, &id);
    send_json(res, 200, app_routes->classify(body, q));
  }

  void retrieve(const httplib::Request& req, httplib::Response& res) {
    json body = request_params(req);
    std::string query, bytes;
    int64_t id;
    Tensor q = query_embedding(req, body, true, &query, &bytes, &id);
    send_json(res, 200, app_routes->retrieve(body, q, query));
  }

  void dedup(const httplib::Request& req, httplib::Response& res) {
    json body = request_params(req);
    const bool has_image = body.contains("image_base64") || body.contains("image_id") ||
                           (req.is_multipart_form_data() && req.has_file("image"));
    if (!has_image) {  // the whole library
      send_json(res, 200, app_routes->dedup_library(body));
      return;
    }
    std::string query, bytes;
    int64_t id;
    Tensor q = query_embedding(req, body, false, &query, &bytes, &id);
    send_json(res, 200, app_routes->dedup_image(body, q, bytes, id));
  }

  void video(const httplib::Request& req, httplib::Response& res) {
    json body = request_params(req);
    std::string bytes;
    if (req.is_multipart_form_data()) {
      if (!req.has_file("video")) throw ApiError(400, "multipart request has no \"video\" field");
      bytes = req.get_file_value("video").content;
    } else {
      if (!body.contains("video_base64") || !body["video_base64"].is_string())
        throw ApiError(400, "send the video as multipart field \"video\" or JSON {\"video_base64\": \"...\"}");
      if (!base64_decode(body["video_base64"].get<std::string>(), &bytes))
        throw ApiError(400, "\"video_base64\" is not valid base64");
    }
    if (bytes.empty()) throw ApiError(400, "the video is empty");
    // FFmpeg reads files: the upload goes to a private temp file, removed when done.
    std::string tmpl = (std::filesystem::temp_directory_path() / "clipkit-video-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw ApiError(500, "cannot create a temporary file for the video");
    struct Remove {
      std::string p;
      ~Remove() { std::remove(p.c_str()); }
    } guard{tmpl};
    const bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    ::close(fd);
    if (!ok) throw ApiError(500, "cannot write the video to a temporary file");
    send_json(res, 200, app_routes->video(body, tmpl));
  }

  void compare(const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req);
    auto prompts = string_list(body, "prompts", o.max_prompts);
    Tensor img = embed_image_bytes(request_image(req, &body), "upload");
    Tensor txt = embed_texts(prompts);
    const int64_t D = img.dim(1), P = txt.dim(0);
    std::vector<double> cos(static_cast<size_t>(P)), logit(static_cast<size_t>(P));
    const double scale = std::exp(static_cast<double>(emb->model().logit_scale()));
    double mx = -1e300;
    for (int64_t p = 0; p < P; ++p) {
      double s = 0;
      for (int64_t c = 0; c < D; ++c) s += static_cast<double>(img.ptr<float>()[c]) * txt.ptr<float>()[p * D + c];
      cos[static_cast<size_t>(p)] = s;
      logit[static_cast<size_t>(p)] = scale * s;
      mx = std::max(mx, logit[static_cast<size_t>(p)]);
    }
    double z = 0;
    for (auto& l : logit) z += std::exp(l - mx);
    json scores = json::array(), sims = json::array();
    for (int64_t p = 0; p < P; ++p) {
      scores.push_back(std::exp(logit[static_cast<size_t>(p)] - mx) / z);
      sims.push_back(cos[static_cast<size_t>(p)]);
    }
    send_json(res, 200, {{"scores", scores}, {"similarities", sims}, {"prompts", prompts}});
  }

  void get_image(const httplib::Request& req, httplib::Response& res) {
    const std::string s = req.matches[1];
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
      throw ApiError(400, "images are addressed by numeric id only: /v1/images/{id}");
    index::ImageRecord r;
    if (!lib->get(std::stoll(s), &r)) throw ApiError(404, "no image with that id");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(r.path, ec)) throw ApiError(404, "the indexed file is no longer there");
    std::string bytes;
    try {
      bytes = read_file(r.path);
    } catch (const Error&) {
      throw ApiError(404, "the indexed file is no longer readable");
    }
    auto fmt = image::sniff_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    res.status = 200;
    res.set_header("Cache-Control", "private, max-age=3600");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(std::move(bytes), mime_of(fmt));
  }

  void healthz(const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"images", lib->info().count}, {"dim", lib->info().dim},
                         {"model", lib->model().dir}, {"index", lib->info().dir}});
  }

  void metrics(const httplib::Request&, httplib::Response& res) {
    std::string s;
    s += "# HELP clipkit_http_requests_total HTTP requests by endpoint and status code.\n";
    s += "# TYPE clipkit_http_requests_total counter\n";
    std::lock_guard<std::mutex> l(mmu);
    for (auto& [k, n] : requests)
      s += fmt::format("clipkit_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, n);
    s += "# HELP clipkit_http_request_duration_seconds Time spent handling requests.\n";
    s += "# TYPE clipkit_http_request_duration_seconds summary\n";
    for (auto& [k, v] : durations) {
      s += fmt::format("clipkit_http_request_duration_seconds_sum{{endpoint=\"{}\"}} {:.6f}\n", k, v.first);
      s += fmt::format("clipkit_http_request_duration_seconds_count{{endpoint=\"{}\"}} {}\n", k, v.second);
    }
    s += "# HELP clipkit_model_batches_total Model batches run, by input kind.\n";
    s += "# TYPE clipkit_model_batches_total counter\n";
    s += fmt::format("clipkit_model_batches_total{{kind=\"text\"}} {}\n", batches_text.load());
    s += fmt::format("clipkit_model_batches_total{{kind=\"image\"}} {}\n", batches_image.load());
    s += "# HELP clipkit_model_rows_total Inputs embedded, by kind (rows / batches = mean batch size).\n";
    s += "# TYPE clipkit_model_rows_total counter\n";
    s += fmt::format("clipkit_model_rows_total{{kind=\"text\"}} {}\n", rows_text.load());
    s += fmt::format("clipkit_model_rows_total{{kind=\"image\"}} {}\n", rows_image.load());
    s += "# HELP clipkit_index_images Images in the index.\n# TYPE clipkit_index_images gauge\n";
    s += fmt::format("clipkit_index_images {}\n", lib->info().count);
    res.set_content(s, "text/plain; version=0.0.4");
  }

  void record(const std::string& endpoint, int status, double seconds) {
    std::lock_guard<std::mutex> l(mmu);
    requests[{endpoint, status}]++;
    auto& d = durations[endpoint];
    d.first += seconds;
    d.second++;
  }

  // Auth, errors as JSON, metrics, one OpenMP thread per request thread.
  httplib::Server::Handler wrap(const std::string& endpoint, bool v1,
                                void (Impl::*fn)(const httplib::Request&, httplib::Response&)) {
    return [this, endpoint, v1, fn](const httplib::Request& req, httplib::Response& res) {
      omp_set_num_threads(1);
      const auto t0 = std::chrono::steady_clock::now();
      try {
        if (v1 && !o.api_key.empty()) {
          const std::string want = "Bearer " + o.api_key;
          if (req.get_header_value("Authorization") != want) {
            res.set_header("WWW-Authenticate", "Bearer");
            throw ApiError(401, "missing or wrong API key (send \"Authorization: Bearer <key>\")");
          }
        }
        (this->*fn)(req, res);
      } catch (const ApiError& e) {
        send_error(res, e.status, e.what());
      } catch (const Error& e) {
        send_error(res, 400, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
      record(endpoint, res.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
  }

  void routes() {
    http.set_payload_max_length(o.max_body_bytes);
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    const int nthreads = std::max(1, o.http_threads);
    http.new_task_queue = [nthreads] { return new httplib::ThreadPool(static_cast<size_t>(nthreads)); };
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'");
      res.set_content(kWebPage, "text/html; charset=utf-8");
    });
    http.Get("/healthz", wrap("/healthz", false, &Impl::healthz));
    http.Get("/metrics", wrap("/metrics", false, &Impl::metrics));
    http.Post("/v1/embed/text", wrap("/v1/embed/text", true, &Impl::embed_text));
    http.Post("/v1/embed/image", wrap("/v1/embed/image", true, &Impl::embed_image));
    http.Post("/v1/search", wrap("/v1/search", true, &Impl::search));
    http.Post("/v1/compare", wrap("/v1/compare", true, &Impl::compare));
    http.Get(R"(/v1/images/(.*))", wrap("/v1/images", true, &Impl::get_image));
    http.Post("/v1/classify", wrap("/v1/classify", true, &Impl::classify));
    http.Post("/v1/retrieve", wrap("/v1/retrieve", true, &Impl::retrieve));
    http.Post("/v1/dedup", wrap("/v1/dedup", true, &Impl::dedup));
    http.Post("/v1/video", wrap("/v1/video", true, &Impl::video));
    // httplib's own errors (404 no route, 413 too large, 400 bad request line): JSON bodies too
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const bool form = req.get_header_value("Content-Type").find("x-www-form-urlencoded") != std::string::npos;
      std::string msg = res.status == 413 && form
                            ? "form-encoded bodies are limited to 8 KiB: send JSON with \"Content-Type: application/json\""
                        : res.status == 413 ? fmt::format("request body too large (limit {} bytes)", o.max_body_bytes)
                        : res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
                        : res.status == 405 ? "method not allowed"
                                            : "bad request";
      send_error(res, res.status, msg);
      std::lock_guard<std::mutex> l(mmu);
      requests[{"other", res.status}]++;
      return httplib::Server::HandlerResponse::Handled;
    }));
  }
};

Server::Server(const ServerOptions& o) : impl_(std::make_unique<Impl>(o)) { impl_->routes(); }
Server::~Server() { stop(); }

int Server::bind() {
  if (impl_->o.port == 0) {
    impl_->bound_port = impl_->http.bind_to_any_port(impl_->o.host);
  } else {
    impl_->bound_port = impl_->http.bind_to_port(impl_->o.host, impl_->o.port) ? impl_->o.port : -1;
  }
  if (impl_->bound_port < 0) fail("cannot listen on {}:{} (address in use or not available)", impl_->o.host, impl_->o.port);
  return impl_->bound_port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() {
  if (impl_) impl_->http.stop();
}
int Server::port() const { return impl_->bound_port; }

}  // namespace clipkit::server
