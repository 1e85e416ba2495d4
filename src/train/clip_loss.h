// The CLIP contrastive loss, forward and backward together (it is cheap: a B x B matrix).
//   a = normalize(image_embeds) [B, P], b = normalize(text_embeds) [B, P]
//   logits_per_text = exp(s) * b a^T                                     [B, B]
//   loss = (CE(logits_per_text, arange) + CE(logits_per_text^T, arange)) / 2   (mean over B)
// Inputs are the unnormalized projected embeddings; gradients come back for them and for s.
#pragma once
#include <cstdint>

namespace clipkit::train {

struct ClipLossResult {
  double loss = 0;
  double dlogit_scale = 0;
};

// dimg/dtxt [B, P] are overwritten (may be null to skip). Data parallel runs call this on the
// all-gathered global batch and each rank keeps the rows of its own samples.
ClipLossResult clip_loss(const float* img, const float* txt, int64_t B, int64_t P, float logit_scale, float* dimg,
                         float* dtxt);

// Retrieval metrics from normalized embeddings, for eval: recall@k in both directions where
// image i matches every caption with caption_image[c] == i.
struct RetrievalMetrics {
  double i2t_r1 = 0, i2t_r5 = 0, i2t_r10 = 0, t2i_r1 = 0, t2i_r5 = 0, t2i_r10 = 0;
};
RetrievalMetrics retrieval_recall(const float* img, int64_t n_img, const float* txt, const int64_t* caption_image,
                                  int64_t n_txt, int64_t P);

}  // namespace clipkit::train
