#include "train/feature_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/hash.h"
#include "core/json.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace clipkit::train {
namespace fs = std::filesystem;

namespace {

using Fnv = Fnv1a;

void hash_file_identity(Fnv& f, const fs::path& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return;
  f.add(p.filename().string());
  f.add_pod(static_cast<int64_t>(st.st_size));
  f.add_pod(static_cast<int64_t>(st.st_mtim.tv_sec));
  f.add_pod(static_cast<int64_t>(st.st_mtim.tv_nsec));
}

}  // namespace

std::string features_key(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds, const FeatureOptions& o) {
  Fnv f;
  f.add("clipkit-features-v1");
  const fs::path dir = emb.model().dir();
  f.add(emb.model().config().raw.dump());
  for (const char* n : {"model.safetensors", "model.safetensors.index.json", "preprocessor_config.json", "vocab.json",
                        "merges.txt", "tokenizer.json", "tokenizer_config.json"})
    hash_file_identity(f, dir / n);
  f.add(backend::precision_name(emb.model().precision()));
  f.add(image::image_backend_name(emb.preprocess_config().backend));
  f.add_pod(o.max_seq_length);
  f.add_pod(static_cast<int64_t>(ds.rows.size()));
  for (auto& r : ds.rows) {
    f.add(r.image_path);
    f.add(r.caption);
  }
  return f.hex();
}

Features compute_features(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds, const FeatureOptions& o,
                          dist::Comm& comm) {
  const auto& m = emb.model();
  if (!m.has_vision() || !m.has_text()) fail("{}: training needs a model with both towers", m.dir());
  const int64_t Cv = m.config().vision->hidden_size, Ct = m.config().text->hidden_size;
  const std::string key = features_key(emb, ds, o);
  const fs::path cache = o.cache_dir.empty() ? fs::path() : fs::path(o.cache_dir) / ("features-" + key + ".safetensors");
  Features F;
  if (!cache.empty() && fs::exists(cache)) {
    try {
      SafeTensorsFile f(cache.string());
      if (f.metadata().count("key") && f.metadata().at("key") == key) {
        auto copy = [](const Tensor& t) {
          Tensor c = Tensor::empty(t.dtype, t.shape);
          std::memcpy(c.data, t.data, t.nbytes());
          return c;
        };
        F.images = copy(f.get("images"));
        F.texts = copy(f.get("texts"));
        const Tensor& rows = f.get("rows");
        const Tensor& ri = f.get("row_image");
        F.rows.assign(rows.ptr<int64_t>(), rows.ptr<int64_t>() + rows.numel());
        F.row_image.assign(ri.ptr<int64_t>(), ri.ptr<int64_t>() + ri.numel());
        if (f.metadata().count("skipped")) {
          auto j = parse_json(f.metadata().at("skipped"), "the feature cache's skipped list");
          for (auto& s : j) F.skipped.push_back(s.get<std::string>());
        }
        F.from_cache = true;
        return F;
      }
    } catch (const Error&) {
      // unreadable cache (e.g. a crash mid-write of an older version): recompute
    }
  }
  // unique images in first-appearance order
  std::map<std::string, int64_t> image_index;
  std::vector<std::string> paths;
  std::vector<int64_t> row_img(ds.rows.size());
  for (size_t r = 0; r < ds.rows.size(); ++r) {
    auto [it, added] = image_index.emplace(ds.rows[r].image_path, static_cast<int64_t>(paths.size()));
    if (added) paths.push_back(ds.rows[r].image_path);
    row_img[r] = it->second;
  }
  const int64_t Ni = static_cast<int64_t>(paths.size()), Nr = static_cast<int64_t>(ds.rows.size());
  const int R = comm.size(), me = comm.rank();
  // each rank embeds a contiguous share; shares are padded to the same length for allgather
  const int64_t img_share = (Ni + R - 1) / R, txt_share = (Nr + R - 1) / R;
  std::vector<float> my_img(static_cast<size_t>(img_share * (Cv + 1)), 0.0f);  // last column: 1 = unreadable
  std::vector<float> my_txt(static_cast<size_t>(txt_share * Ct), 0.0f);
  {
    const int64_t b = std::min(Ni, me * img_share), e = std::min(Ni, b + img_share);
    Progress p("features: images", e - b, "images");
    const int64_t S = m.image_size(), per = 3 * S * S;
    for (int64_t s = b; s < e; s += o.batch_size) {
      const int64_t n = std::min<int64_t>(o.batch_size, e - s);
      std::vector<float> px(static_cast<size_t>(n * per), 0.0f);
      std::vector<std::string> err(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t i = 0; i < n; ++i) {
        try {
          image::load_and_preprocess(paths[static_cast<size_t>(s + i)], emb.preprocess_config(), px.data() + i * per);
        } catch (const std::exception& ex) {
          err[static_cast<size_t>(i)] = ex.what();
        }
      }
      auto out = m.vision_forward(px.data(), n, false);
      for (int64_t i = 0; i < n; ++i) {
        float* dst = my_img.data() + (s - b + i) * (Cv + 1);
        std::memcpy(dst, out.pooled.ptr<float>() + i * Cv, sizeof(float) * Cv);
        dst[Cv] = err[static_cast<size_t>(i)].empty() ? 0.0f : 1.0f;
        if (!err[static_cast<size_t>(i)].empty()) F.skipped.push_back(err[static_cast<size_t>(i)]);
      }
      p.add(n);
    }
  }
  {
    const int64_t b = std::min(Nr, me * txt_share), e = std::min(Nr, b + txt_share);
    // sort this share by caption length so dynamic padding wastes little; pooled outputs don't depend on padding
    std::vector<int64_t> order(static_cast<size_t>(e - b));
    std::iota(order.begin(), order.end(), b);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
      return ds.rows[static_cast<size_t>(x)].caption.size() < ds.rows[static_cast<size_t>(y)].caption.size();
    });
    Progress p("features: captions", e - b, "captions");
    for (size_t s = 0; s < order.size(); s += static_cast<size_t>(o.batch_size)) {
      const size_t n = std::min(order.size() - s, static_cast<size_t>(o.batch_size));
      std::vector<std::string> caps;
      for (size_t i = 0; i < n; ++i) caps.push_back(ds.rows[static_cast<size_t>(order[s + i])].caption);
      std::vector<int32_t> ids, mask;
      int64_t L;
      emb.tokenize(caps, &ids, &mask, &L, o.max_seq_length);
      auto out = m.text_forward(ids.data(), mask.data(), static_cast<int64_t>(n), L, false);
      for (size_t i = 0; i < n; ++i)
        std::memcpy(my_txt.data() + (order[s + i] - b) * Ct, out.pooled.ptr<float>() + i * Ct, sizeof(float) * Ct);
      p.add(static_cast<int64_t>(n));
    }
  }
  std::vector<float> all_img(static_cast<size_t>(R * img_share * (Cv + 1)));
  std::vector<float> all_txt(static_cast<size_t>(R * txt_share * Ct));
  comm.allgather(my_img.data(), static_cast<int64_t>(my_img.size()), all_img.data());
  comm.allgather(my_txt.data(), static_cast<int64_t>(my_txt.size()), all_txt.data());
  F.images = Tensor::empty(DType::F32, {Ni, Cv});
  std::vector<bool> bad(static_cast<size_t>(Ni));
  for (int64_t i = 0; i < Ni; ++i) {
    std::memcpy(F.images.ptr<float>() + i * Cv, all_img.data() + i * (Cv + 1), sizeof(float) * Cv);
    bad[static_cast<size_t>(i)] = all_img[static_cast<size_t>(i * (Cv + 1) + Cv)] != 0.0f;
  }
  for (int64_t r = 0; r < Nr; ++r)
    if (!bad[static_cast<size_t>(row_img[static_cast<size_t>(r)])]) {
      F.rows.push_back(r);
      F.row_image.push_back(row_img[static_cast<size_t>(r)]);
    }
  F.texts = Tensor::empty(DType::F32, {static_cast<int64_t>(F.rows.size()), Ct});
  for (size_t k = 0; k < F.rows.size(); ++k)
    std::memcpy(F.texts.ptr<float>() + k * Ct, all_txt.data() + F.rows[k] * Ct, sizeof(float) * Ct);
  if (!cache.empty() && comm.rank() == 0) {
    fs::create_directories(cache.parent_path());
    Tensor rows = Tensor::empty(DType::I64, {static_cast<int64_t>(F.rows.size())});
    Tensor ri = Tensor::empty(DType::I64, {static_cast<int64_t>(F.rows.size())});
    std::copy(F.rows.begin(), F.rows.end(), rows.ptr<int64_t>());
    std::copy(F.row_image.begin(), F.row_image.end(), ri.ptr<int64_t>());
    write_safetensors(cache.string(), {{"images", F.images}, {"texts", F.texts}, {"rows", rows}, {"row_image", ri}},
                      {{"key", key}, {"skipped", nlohmann::json(F.skipped).dump()}, {"model", m.dir()}});
  }
  return F;
}

}  // namespace clipkit::train
