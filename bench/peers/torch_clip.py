#!/usr/bin/python3
"""A plain-PyTorch copy of Hugging Face `CLIPModel` inference, used as a benchmark peer.

There is no `transformers` package on this machine (Debian only), so this module re-implements what
`transformers.models.clip.modeling_clip` computes at inference time, with the same parameter names,
so that loading checks every HF key of the checkpoint (none missing, none unexpected):

  vision: patch conv (no bias) -> [CLS] + patches -> + position embedding -> pre_layrnorm ->
          pre-LN encoder layers -> post_layernorm(hidden[:, 0]) -> visual_projection
  text:   token + position embedding -> pre-LN encoder layers with causal + key-padding mask ->
          final_layer_norm -> hidden at EOS -> text_projection

It uses torch's ordinary efficient ops (F.linear, F.layer_norm, matmul + softmax attention like HF's
"eager" attention; torch 1.13 has no scaled_dot_product_attention).

`/usr/bin/python3 torch_clip.py --check` verifies it against the float64 references in
tests/data/reference/models/tiny-clip.safetensors (a copy of shared/reference/models/; see the
README there for how they were made).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_config import bench_captions, image_flops, load_config, text_flops  # noqa: E402,F401
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402,F401

# ----------------------------------------------------------------------------------------------
# model (parameter names = HF state-dict names)


def _activation(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu  # exact erf
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported hidden_act {name!r}")


class CLIPAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = d // self.heads
        if self.head_dim * self.heads != d:
            raise ValueError(f"hidden_size {d} is not a multiple of num_attention_heads {self.heads}")
        self.scale = self.head_dim ** -0.5
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x, mask):  # x [B, L, D]; mask None or additive [B, 1, L, L]
        b, n, d = x.shape
        q = (self.q_proj(x) * self.scale).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2))  # [B, H, L, L]
        if mask is not None:
            w = w + mask
        w = torch.softmax(w, dim=-1)  # autocast runs softmax in fp32 (as HF under autocast)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(o)


class CLIPMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.act = _activation(c["hidden_act"])
        self.fc1 = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, eps = c["hidden_size"], c["layer_norm_eps"]
        self.self_attn = CLIPAttention(c)
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = CLIPMLP(c)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(c) for _ in range(c["num_hidden_layers"]))

    def forward(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, mask)
        return x


class CLIPVisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.patch_embedding = nn.Conv2d(c["num_channels"], d, kernel_size=p, stride=p, bias=False)
        self.num_positions = (c["image_size"] // p) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, d)

    def forward(self, pixel_values):  # [B, C, H, W] -> [B, 1 + patches, D]
        w = self.patch_embedding.weight
        patches = self.patch_embedding(pixel_values.to(w.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.view(1, 1, -1).expand(patches.shape[0], 1, -1)
        x = torch.cat([cls.to(patches.dtype), patches], dim=1)
        return x + self.position_embedding.weight[: x.shape[1]]


class CLIPVisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])  # HF's spelling
        self.encoder = CLIPEncoder(c)
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, pixel_values):
        """Returns (last_hidden_state before post_layernorm, pooler_output) as HF does."""
        h = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        return h, self.post_layernorm(h[:, 0, :])


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.token_embedding = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embedding = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])

    def forward(self, input_ids):
        return self.token_embedding(input_ids) + self.position_embedding.weight[: input_ids.shape[1]]


class CLIPTextTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.eos_token_id = c["eos_token_id"]
        self.embeddings = CLIPTextEmbeddings(c)
        self.encoder = CLIPEncoder(c)
        self.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, input_ids, attention_mask=None):
        """input_ids [B, L] int64, attention_mask [B, L] (1 = token, 0 = pad) -> (hidden, pooled)."""
        x = self.embeddings(input_ids)
        n = input_ids.shape[1]
        pos = torch.arange(n, device=input_ids.device)
        masked = (pos.view(1, n) > pos.view(n, 1)).view(1, 1, n, n)  # causal: key after query
        if attention_mask is not None:
            masked = masked | (attention_mask == 0).view(-1, 1, 1, n)
        # One additive mask with finfo.min at masked keys, as HF (no fully masked row: BOS is real).
        mask = torch.zeros(masked.shape, dtype=x.dtype).masked_fill(masked, torch.finfo(x.dtype).min)
        h = self.final_layer_norm(self.encoder(x, mask))
        rows = torch.arange(h.shape[0], device=h.device)
        if self.eos_token_id == 2:
            # Legacy configs (the openai/* ones) say 2, which is not the real EOS id:
            # HF then pools at argmax(input_ids), i.e. at <|endoftext|> = the highest id.
            eos = input_ids.to(torch.int64).argmax(dim=-1)
        else:
            eos = (input_ids == self.eos_token_id).to(torch.int64).argmax(dim=-1)
        return h, h[rows, eos]


def _normalize(x):
    # Embeddings come out in fp32 (or fp64), also when autocast computed them in bf16.
    return F.normalize(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x, dim=-1)


class CLIPModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.text_model = CLIPTextTransformer(cfg["text"])
        self.vision_model = CLIPVisionTransformer(cfg["vision"])
        p = cfg["projection_dim"]
        self.visual_projection = nn.Linear(cfg["vision"]["hidden_size"], p, bias=False)
        self.text_projection = nn.Linear(cfg["text"]["hidden_size"], p, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))

    def get_image_features(self, pixel_values):
        return self.visual_projection(self.vision_model(pixel_values)[1])

    def get_text_features(self, input_ids, attention_mask=None):
        return self.text_projection(self.text_model(input_ids, attention_mask)[1])

    def forward(self, input_ids, pixel_values, attention_mask=None):
        img = _normalize(self.get_image_features(pixel_values))
        txt = _normalize(self.get_text_features(input_ids, attention_mask))
        logits_per_image = self.logit_scale.exp() * img @ txt.t()
        return logits_per_image, img, txt


class ImageEncoder(nn.Module):
    """pixel_values [N, 3, H, W] -> L2-normalised image_embeds [N, P] (what `clipkit embed` returns)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return _normalize(self.model.get_image_features(pixel_values))


class TextEncoder(nn.Module):
    """input_ids, attention_mask [N, L] int64 -> L2-normalised text_embeds [N, P]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return _normalize(self.model.get_text_features(input_ids, attention_mask))


# Buffers some HF checkpoints carry that are not parameters here.
_IGNORED_KEYS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")


def load_model(model_dir, dtype=torch.float32):
    cfg = load_config(model_dir)
    path = os.path.join(model_dir, "model.safetensors")
    arrays, _ = read_safetensors(path)
    state = {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in arrays.items()
             if k not in _IGNORED_KEYS}
    model = CLIPModel(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return model.to(dtype).eval()


# ----------------------------------------------------------------------------------------------
# self-check against the stored float64 references


def check(model_dir, ref_path):
    ref, _ = read_safetensors(ref_path)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    ok = True
    for dtype, scale_tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        model = load_model(model_dir, dtype)
        with torch.no_grad():
            ids = torch.from_numpy(ref["input_ids"].copy())
            am = torch.from_numpy(ref["attention_mask"].copy())
            px = torch.from_numpy(ref["pixel_values"].copy()).to(dtype)
            th, tp = model.text_model(ids, am)
            ih, ip = model.vision_model(px)
            logits, img, txt = model(ids, px.to(dtype), am) if dtype == torch.float64 else (None,) * 3
            got = {
                "text_last_hidden_state": th, "text_pooler_output": tp,
                "text_embeds_unnormalized": model.text_projection(tp),
                "image_last_hidden_state": ih, "image_pooler_output": ip,
                "image_embeds_unnormalized": model.visual_projection(ip),
                "text_embeds": TextEncoder(model)(ids, am),
                "image_embeds": ImageEncoder(model)(px),
            }
            if logits is not None:
                got["logits_per_image"] = logits
        for name, t in got.items():
            r = ref[name]
            err = float(np.abs(t.double().numpy() - r).max())
            lim = scale_tol * float(np.abs(r).max())
            if dtype == torch.float32 and name.endswith("_embeds"):
                lim = max(lim, 3e-6)  # normalised embeds: the README's absolute tolerance
            status = "ok" if err <= lim else "FAIL"
            ok &= err <= lim
            print(f"{str(dtype):14s} {name:28s} max abs err {err:.3e}  (limit {lim:.1e})  {status}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare against the tiny-clip references")
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data")
    ap.add_argument("--model", default=os.path.normpath(os.path.join(data, "models", "tiny-clip")))
    ap.add_argument("--ref", default=os.path.normpath(os.path.join(data, "reference", "models",
                                                                   "tiny-clip.safetensors")))
    a = ap.parse_args()
    if not a.check:
        ap.print_help()
        return 0
    ok = check(a.model, a.ref)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
