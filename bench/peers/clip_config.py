"""CLIP config.json reading, FLOP counts and the benchmark's synthetic captions (no torch needed)."""
import json
import os

import numpy as np

# ----------------------------------------------------------------------------------------------
# config


def _sub_config(cfg, key):
    """HF merges the legacy `*_config_dict` overrides over `*_config` (old checkpoints carry both)."""
    sub = dict(cfg.get(key) or {})
    sub.update(cfg.get(key + "_dict") or {})
    return sub


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "clip":
        raise ValueError(f"{model_dir}/config.json: model_type is {cfg.get('model_type')!r}, want 'clip'")
    t = _sub_config(cfg, "text_config")
    v = _sub_config(cfg, "vision_config")
    # Defaults of transformers' CLIPTextConfig / CLIPVisionConfig for keys a config may leave out.
    tdef = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                layer_norm_eps=1e-5, eos_token_id=2, pad_token_id=1)
    vdef = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                num_channels=3, image_size=224, patch_size=32, hidden_act="quick_gelu",
                layer_norm_eps=1e-5)
    for d, s in ((tdef, t), (vdef, v)):
        for k, val in d.items():
            if s.get(k) is None:
                s[k] = val
    return {"text": t, "vision": v, "projection_dim": cfg.get("projection_dim", 512)}

# ----------------------------------------------------------------------------------------------
# FLOPs (multiply-add = 2), the same count for every engine so GFLOP/s figures compare

def _encoder_flops(c, tokens):
    d, i = c["hidden_size"], c["intermediate_size"]
    per_layer = 2 * tokens * (4 * d * d + 2 * d * i) + 2 * 2 * tokens * tokens * d
    return c["num_hidden_layers"] * per_layer


def image_flops(cfg):
    v = cfg["vision"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    conv = 2 * patches * v["hidden_size"] * v["num_channels"] * v["patch_size"] ** 2
    return conv + _encoder_flops(v, patches + 1) + 2 * v["hidden_size"] * cfg["projection_dim"]


def text_flops(cfg, seq_len):
    t = cfg["text"]
    return _encoder_flops(t, seq_len) + 2 * t["hidden_size"] * cfg["projection_dim"]

# ----------------------------------------------------------------------------------------------
# benchmark inputs, shared by torch_bench.py and export_onnx.py (ort_bench.mjs has the same rule)

def bench_captions(n, max_len=20, eos_id=49407, bos_id=49406, seed=0):
    """n synthetic captions of max_len-8..max_len tokens (BOS + words + EOS; at least 3), padded with
    EOS to the longest ("dynamic padding", so the batch is [n, max_len] when n >= 9). The default 20
    gives 12..20 tokens, mean 16. Returns int64 (input_ids, attention_mask)."""
    lengths = [max(3, max_len - (i % 9)) for i in range(n)]
    L = max(lengths)
    rng = np.random.default_rng(seed)
    ids = np.full((n, L), eos_id, dtype=np.int64)
    mask = np.zeros((n, L), dtype=np.int64)
    for r, ln in enumerate(lengths):
        ids[r, 0] = bos_id
        ids[r, 1:ln - 1] = rng.integers(256, eos_id - 2, ln - 2)
        ids[r, ln - 1] = eos_id
        mask[r, :ln] = 1
    return ids, mask
