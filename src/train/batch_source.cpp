#include "train/batch_source.h"

#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"
#include "image/batch.h"

namespace clipkit::train {

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> o(static_cast<size_t>(n));
  std::iota(o.begin(), o.end(), 0);
  if (!shuffle) return o;
  std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) std::swap(o[i], o[rng() % static_cast<uint64_t>(i + 1)]);
  return o;
}

CaptionBatches::CaptionBatches(const pipeline::Embedder& emb, const dataset::CaptionDataset& ds,
                               const CaptionOptions& o, dist::Comm& comm)
    : emb_(emb), o_(o) {
  const bool lead = comm.rank() == 0 && o.report;
  std::map<std::string, int64_t> index;
  std::vector<int64_t> row_img(ds.rows.size());
  for (size_t r = 0; r < ds.rows.size(); ++r) {
    auto [it, added] = index.emplace(ds.rows[r].image_path, static_cast<int64_t>(image_paths_.size()));
    if (added) image_paths_.push_back(ds.rows[r].image_path);
    row_img[r] = it->second;
  }
  const int64_t Ni = images();
  std::vector<bool> bad(static_cast<size_t>(Ni), false);
  if (o.features_vision || o.features_text) {
    feats_ = compute_features(emb, ds, o.features, comm);
    if (lead) {
      std::fprintf(stderr, "clipkit train: features for %zu captions / %lld images %s\n", feats_->rows.size(),
                   static_cast<long long>(Ni), feats_->from_cache ? "(from cache)" : "(computed)");
      for (auto& s : feats_->skipped) std::fprintf(stderr, "  skipped image %s\n", s.c_str());
    }
    rows_ = feats_->rows;
    row_image_ = feats_->row_image;
  }
  const int64_t per = static_cast<int64_t>(image::floats_per_image(emb.preprocess_config()));
  if (!o.features_vision && Ni * per * 4 <= o.pixel_cache_mb * (int64_t{1} << 20)) {
    pixels_.assign(static_cast<size_t>(Ni * per), 0.0f);
    auto errs = image::preprocess_files(image_paths_, emb.preprocess_config(), {}, pixels_.data());
    for (int64_t i = 0; i < Ni; ++i)
      if (!errs[static_cast<size_t>(i)].empty()) {
        bad[static_cast<size_t>(i)] = true;
        if (lead) std::fprintf(stderr, "  skipped image %s\n", errs[static_cast<size_t>(i)].c_str());
      }
  }
  if (!feats_)
    for (size_t r = 0; r < ds.rows.size(); ++r)
      if (!bad[static_cast<size_t>(row_img[r])]) {
        rows_.push_back(static_cast<int64_t>(r));
        row_image_.push_back(row_img[r]);
      }
  for (int64_t r : rows_) captions_.push_back(ds.rows[static_cast<size_t>(r)].caption);
  if (rows_.empty()) fail("{}: no usable rows (every image was unreadable)", ds.root);
}

void CaptionBatches::read(int64_t epoch, int64_t begin, int64_t end, Batch& b) {
  if (order_epoch_ != epoch) {
    order_ = epoch_order(size(), o_.seed, epoch, o_.shuffle);
    order_epoch_ = epoch;
  }
  std::vector<int64_t> rows(order_.begin() + begin, order_.begin() + end), imgs;
  for (int64_t r : rows) imgs.push_back(row_image_[static_cast<size_t>(r)]);
  image_inputs(imgs, b.images);
  text_inputs(rows, b.texts);
}

namespace {

// out += the rows `rows` of t [n, C]
void append_rows(const clipkit::Tensor& t, const std::vector<int64_t>& rows, std::vector<float>& out) {
  const int64_t C = t.dim(1);
  for (int64_t r : rows) out.insert(out.end(), t.ptr<float>() + r * C, t.ptr<float>() + (r + 1) * C);
}

}  // namespace

void CaptionBatches::image_inputs(const std::vector<int64_t>& images, TowerInput& out) const {
  out = {};
  out.n = static_cast<int64_t>(images.size());
  if (o_.features_vision) return append_rows(feats_->images, images, out.features);
  const int64_t per = static_cast<int64_t>(image::floats_per_image(emb_.preprocess_config()));
  if (!pixels_.empty()) {
    for (int64_t i : images) out.pixels.insert(out.pixels.end(), pixels_.begin() + i * per, pixels_.begin() + (i + 1) * per);
    return;
  }
  std::vector<std::string> paths;
  for (int64_t i : images) paths.push_back(image_paths_[static_cast<size_t>(i)]);
  out.pixels.assign(static_cast<size_t>(out.n * per), 0.0f);
  for (auto& e : image::preprocess_files(paths, emb_.preprocess_config(), {}, out.pixels.data()))
    if (!e.empty()) std::fprintf(stderr, "clipkit train: warning: %s (zero pixels used)\n", e.c_str());
}

void CaptionBatches::text_inputs(const std::vector<int64_t>& rows, TowerInput& out) const {
  out = {};
  out.n = static_cast<int64_t>(rows.size());
  if (o_.features_text) return append_rows(feats_->texts, rows, out.features);
  std::vector<std::string> caps;
  for (int64_t r : rows) caps.push_back(captions_[static_cast<size_t>(r)]);
  // dynamic padding: pads are masked, so the results don't depend on it
  if (!caps.empty()) emb_.tokenize(caps, &out.ids, &out.mask, &out.L, o_.max_seq_length);
}

}  // namespace clipkit::train
