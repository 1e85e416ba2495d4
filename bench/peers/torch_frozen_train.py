#!/usr/bin/python3
"""PyTorch peer for frozen-tower training (run_clip.py --freeze_vision_model --freeze_text_model),
the Hugging Face way: every step re-runs both frozen towers (RoBERTa in train mode, so with its
dropout, as the HF Trainer does), then projections + CLIP loss + backward + AdamW.

usage: torch_frozen_train.py DUAL_MODEL_DIR [--batch-size 32] [--steps 3] [--pad 128|dynamic]
       [--threads 2] [--precision fp32|bf16]
Architecture from the dual encoder's config.json (vision_config: CLIP ViT; text_config: RoBERTa);
weights are random (speed does not depend on them). Prints one JSON line.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_clip import CLIPVisionTransformer  # noqa: E402


class RobertaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, i = c["hidden_size"], c["intermediate_size"]
        self.h, self.hd = c["num_attention_heads"], d // c["num_attention_heads"]
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=c["layer_norm_eps"]), nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.fc1, self.fc2 = nn.Linear(d, i), nn.Linear(i, d)
        self.drop = nn.Dropout(c.get("hidden_dropout_prob", 0.1))
        self.adrop = nn.Dropout(c.get("attention_probs_dropout_prob", 0.1))

    def forward(self, x, mask):
        B, L, D = x.shape
        split = lambda t: t.view(B, L, self.h, self.hd).transpose(1, 2)
        s = split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / math.sqrt(self.hd) + mask
        a = (self.adrop(s.softmax(-1)) @ split(self.v(x))).transpose(1, 2).reshape(B, L, D)
        x = self.ln1(x + self.drop(self.o(a)))
        return self.ln2(x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class Roberta(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.pad = c.get("pad_token_id", 1)
        self.word = nn.Embedding(c["vocab_size"], d)
        self.pos = nn.Embedding(c["max_position_embeddings"], d)
        self.tok = nn.Embedding(c.get("type_vocab_size", 1), d)
        self.ln = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.drop = nn.Dropout(c.get("hidden_dropout_prob", 0.1))
        self.layers = nn.ModuleList(RobertaLayer(c) for _ in range(c["num_hidden_layers"]))
        self.pooler = nn.Linear(d, d)

    def forward(self, ids, mask):
        real = (ids != self.pad).long()
        pos = torch.cumsum(real, 1) * real + self.pad
        x = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.tok.weight[0]))
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, add)
        return torch.tanh(self.pooler(x[:, 0]))


def make_step(vision, text, vp, tp, logit_scale, px, ids, mask, opt, clip_params, precision):
    """One HF-style CLIP training step (run_clip.py): both towers forward (under bf16 autocast for
    precision "bf16"), projections, normalized embeddings, the symmetric CLIP loss, backward,
    clip_grad_norm_(clip_params, 1.0), AdamW step, zero_grad."""
    B = px.shape[0]

    def step():
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
        with ctx:
            _, pooled_img = vision(px)
            pooled_txt = text(ids, mask)
            ie = F.normalize(vp(pooled_img).float(), dim=-1)
            te = F.normalize(tp(pooled_txt).float(), dim=-1)
        logits = logit_scale.exp() * te @ ie.t()
        target = torch.arange(B)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clip_params, 1.0)
        opt.step()
        opt.zero_grad()

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--pad", default="128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    vc, tc, P = dict(cfg["vision_config"]), dict(cfg["text_config"]), cfg["projection_dim"]
    vc.setdefault("num_channels", 3)
    vision, text = CLIPVisionTransformer(vc), Roberta(tc)
    for p in list(vision.parameters()) + list(text.parameters()):
        p.requires_grad_(False)
    vision.train(), text.train()  # the Trainer calls model.train(): RoBERTa dropout stays on
    vp = nn.Linear(vc["hidden_size"], P, bias=False)
    tp = nn.Linear(tc["hidden_size"], P, bias=False)
    logit_scale = nn.Parameter(torch.tensor(2.6592))
    opt = torch.optim.AdamW(list(vp.parameters()) + list(tp.parameters()) + [logit_scale], lr=5e-5)
    B = a.batch_size
    L = 128 if a.pad == "128" else 18  # dynamic padding of COCO captions: ~18 tokens per batch
    px = torch.randn(B, 3, vc["image_size"], vc["image_size"])
    ids = torch.randint(4, 1000, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    if a.pad == "128":  # captions of ~14 tokens padded to 128
        ids[:, 14:] = tc.get("pad_token_id", 1)
        mask[:, 14:] = 0

    step = make_step(vision, text, vp, tp, logit_scale, px, ids, mask, opt,
                     list(vp.parameters()) + list(tp.parameters()) + [logit_scale], a.precision)

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    s = time.perf_counter() - t0
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "precision": a.precision, "batch_size": B,
                      "text_length": L, "steps": a.steps, "samples_per_s": B * a.steps / s}))


if __name__ == "__main__":
    main()
