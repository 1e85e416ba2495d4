"""The rows of bench/gpu_check.sh's table: what each measures, its unit, and the issue's target
(issue 16: ratios against HF transformers on the same card, in the same run)."""

# key: (what, unit, higher_is_better, target as (kind, number), where kind "ratio" is clipkit/HF
# throughput (or HF/clipkit latency) and "abs" an absolute bound)
ROWS = {
    "image_b32": ("ViT-B/32 image embedding, tensors, bf16", "images/s", True, ("ratio", 1.5)),
    "image_b32_compiled": ("the same, HF under torch.compile max-autotune", "images/s", True, ("ratio", 1.2)),
    "image_l14": ("ViT-L/14 image embedding, tensors, bf16", "images/s", True, None),
    "jpeg_b32": ("ViT-B/32: 640x480 JPEG files -> embeddings", "images/s", True, ("abs", 12000)),
    "text_b32": ("ViT-B/32 text embedding, 77 tokens, bf16", "texts/s", True, ("ratio", 1.5)),
    "latency_b32": ("ViT-B/32 one image -> embedding", "ms", False, ("abs", 1.0)),
    "train_pad128": ("full fine-tuning step, batch 256, captions padded to 128", "samples/s", True, ("ratio", 2.0)),
    "train_dynamic": ("full fine-tuning step, batch 512, captions padded to 24", "samples/s", True, ("ratio", 1.3)),
}

# clipkit's own rows: parity with HF on the card (no HF timing beside them)
PARITY = {
    "parity_embed_fp32": ("fp32 embeddings vs HF fp32, max relative error", "rel", ("le", 1e-4)),
    "parity_embed_bf16": ("bf16 embeddings vs HF fp32, min cosine", "cos", ("ge", 0.999)),
    "parity_grads_bf16": ("bf16 step gradients vs HF fp32, relative L2 (HF's own bf16: parity_hf_bf16_grad_err)",
                          "rel L2", None),
}
