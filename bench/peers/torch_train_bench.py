#!/usr/bin/python3
"""PyTorch peer for full fine-tuning (run_clip.py with nothing frozen): both towers trainable,
projections, CLIP loss, backward, gradient clipping, AdamW -- samples/s of complete steps.

usage: torch_train_bench.py DUAL_MODEL_DIR [--batch-size 32] [--steps 2] [--warmup 1]
       [--pad 128|dynamic] [--precision fp32|bf16] [--threads 2] [--no-dropout]
Architecture from the dual encoder's config.json (vision_config: CLIP ViT from torch_clip.py;
text_config: RoBERTa from torch_frozen_train.py); weights random (speed does not depend on them).
fp32 is eager fp32; bf16 is torch.autocast("cpu", bfloat16) with fp32 master weights.
Inputs match bench/train_bench.cpp: random pixels, caption k has 10 + (7k mod 11) tokens (bos ...
eos), padded to 128 or to the batch's longest (20). RoBERTa runs in train mode (dropout on) unless
--no-dropout. Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_clip import CLIPVisionTransformer  # noqa: E402
from torch_frozen_train import Roberta, make_step  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--pad", default="128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--no-dropout", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    vc, tc, P = dict(cfg["vision_config"]), dict(cfg["text_config"]), cfg["projection_dim"]
    vc.setdefault("num_channels", 3)
    vision, text = CLIPVisionTransformer(vc), Roberta(tc)
    vision.train(), text.train()
    if a.no_dropout:
        text.eval()  # no dropout; gradients still flow (autograd does not depend on train/eval)
    vp = nn.Linear(vc["hidden_size"], P, bias=False)
    tp = nn.Linear(tc["hidden_size"], P, bias=False)
    logit_scale = nn.Parameter(torch.tensor(2.6592))
    params = list(vision.parameters()) + list(text.parameters()) + list(vp.parameters()) + list(tp.parameters()) + [logit_scale]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1)
    B = a.batch_size
    lens = [10 + (k * 7) % 11 for k in range(B)]
    L = max(lens) if a.pad == "dynamic" else int(a.pad)
    pad, bos, eos = tc.get("pad_token_id", 1), tc.get("bos_token_id", 0), tc.get("eos_token_id", 2)
    ids = torch.full((B, L), pad, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.long)
    for k in range(B):
        n = min(L, lens[k])
        for t in range(n):
            ids[k, t] = bos if t == 0 else eos if t == n - 1 else 1000 + (k * 131 + t * 17) % 20000
        mask[k, :n] = 1
    px = torch.randn(B, 3, vc["image_size"], vc["image_size"])

    step = make_step(vision, text, vp, tp, logit_scale, px, ids, mask, opt, params, a.precision)

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "precision": a.precision, "batch_size": B,
                      "padding": a.pad, "seq_len": L, "steps": a.steps, "threads": a.threads,
                      "dropout": not a.no_dropout, "step_s": t, "samples_per_s": B / t}))


if __name__ == "__main__":
    main()
