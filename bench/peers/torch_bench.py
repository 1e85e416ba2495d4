#!/usr/bin/python3
"""Times PyTorch (eager, torch_clip.py) CLIP embedding on random inputs; prints one JSON object.

  torch_bench.py MODEL_DIR [--batch-size 32] [--precision fp32|bf16] [--part vision|text]
                 [--threads 2] [--warmup 2] [--iters 3]

fp32 is plain eager fp32; bf16 is `torch.autocast("cpu", dtype=torch.bfloat16)` over the fp32
model (what a PyTorch user would do). Text inputs are bench_captions(N, --seq-len): by default 12..20
tokens, padded to the longest in the batch. Throughput uses the median time of the timed batches.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _loaded_blas():
    """The BLAS library this process loaded (reference BLAS makes fp32 ~10x slower than OpenBLAS)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]}
        return sorted(libs)[0] if libs else "none"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--part", choices=("vision", "text"), default="vision")
    ap.add_argument("--seq-len", type=int, default=20,
                    help="text: longest caption in tokens (captions are seq_len-8..seq_len long)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()

    # Debian's torch does fp32 matmuls through libblas.so.3 (OpenBLAS when libopenblas0-pthread is
    # installed, see setup.sh), whose thread pool is sized from the environment at load time.
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    import torch
    from torch_clip import ImageEncoder, TextEncoder, bench_captions, image_flops, load_model, text_flops
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = load_model(a.model_dir)
    load_s = time.perf_counter() - t0
    cfg, n = model.config, a.batch_size
    if a.part == "vision":
        v = cfg["vision"]
        gen = torch.Generator().manual_seed(0)
        inputs = (torch.randn(n, v["num_channels"], v["image_size"], v["image_size"], generator=gen),)
        enc, flops, seq_len = ImageEncoder(model), image_flops(cfg), None
    else:
        ids, mask = bench_captions(n, a.seq_len)
        inputs = (torch.from_numpy(ids), torch.from_numpy(mask))
        seq_len = ids.shape[1]
        enc, flops = TextEncoder(model), text_flops(cfg, seq_len)

    def run():
        with torch.inference_mode():
            if a.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return enc(*inputs)
            return enc(*inputs)

    for _ in range(a.warmup):
        out = run()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t)
    if not torch.isfinite(out).all():
        print(f"torch_bench: non-finite embeddings from {a.model_dir}", file=sys.stderr)
        return 1
    med = statistics.median(times)
    key = "images_per_s" if a.part == "vision" else "texts_per_s"
    res = {
        "engine": "pytorch", "version": torch.__version__, "part": a.part, "precision": a.precision,
        "batch_size": n, "threads": a.threads, key: n / med,
        "gflops_per_s": flops * n / med / 1e9, "gflop_per_item": flops / 1e9,
        "seconds_per_batch": [round(x, 4) for x in times], "load_s": round(load_s, 2),
        "embed_dim": int(out.shape[1]), "embed_checksum": float(np.abs(out.float().numpy()).sum()),
    }
    if seq_len is not None:
        res["seq_len"] = int(seq_len)
    res["blas"] = _loaded_blas()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
