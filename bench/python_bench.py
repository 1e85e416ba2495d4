#!/usr/bin/env python3
"""The Python package's overhead (issue 17), each figure against its peer in the same run:

1. Embedding a list of 256 JPEG paths: a Python process (import clipkit, load, embed_images,
   np.save) against `clipkit embed --images ... --out` on the same images and settings, both timed
   end to end as processes (start-up, model load, decode, forward, writing the .npy), R rounds that
   each run both; medians, their ratio (target: Python within 5%), and the in-process time of the
   embed_images call alone. The two .npy files must be bit-identical.
2. Tokenizing a Python list of 10,000 short texts (COCO captions): Model.tokenize against
   bench/tokenize_peer.py (OpenAI CLIP's simple_tokenizer in pure Python, what HF's slow
   CLIPTokenizer runs), both in this process, caches warmed by one untimed pass; medians of R.

usage: bench/python_bench.py [--model DIR] [--threads 2] [--repeats 3] [--json OUT]
Run from the repository root with PYTHONPATH=build/python (bench/python_bench.sh does), under
/work/tools/quiet or the bench lock. MODEL defaults to a random ViT-B/32 CLIP made once by
`clipkit init` under build-bench/ (real-size compute; the weights do not change the timing).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COCO = REPO / "tests" / "data" / "datasets" / "coco-tiny"
CLI = Path(os.environ.get("CLIPKIT", REPO / "build" / "tools" / "clipkit" / "clipkit"))


def jpeg_paths(n):
    imgs = sorted(str(p) for p in COCO.rglob("*.jpg"))
    return [imgs[i % len(imgs)] for i in range(n)]


def captions(n):
    caps = []
    for split in ("train", "val"):
        ann = json.loads((COCO / "annotations" / f"captions_{split}2017.json").read_text())
        caps += [a["caption"] for a in ann["annotations"]]
    return [caps[i % len(caps)] + ("" if i < len(caps) else f" {i // len(caps)}") for i in range(n)]


def default_model():
    model = REPO / "build-bench" / "vit-b32"
    if not (model / "model.safetensors").exists():
        subprocess.run([str(CLI), "init", "--arch", "clip-vit-base-patch32", "--out", str(model)], check=True,
                       stdout=subprocess.DEVNULL)
    return model


PY_EMBED = """
import sys, time, numpy as np
t0 = time.perf_counter()
import clipkit
model, out, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = open(sys.argv[5]).read().split("\\n")
m = clipkit.load(model, threads=threads)
t1 = time.perf_counter()
x = m.embed_images(paths, batch_size=batch)
t2 = time.perf_counter()
np.save(out, x)
print(t2 - t1)
"""


def timed(cmd, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, r.stdout


def bench_embed(model, threads, repeats, tmp):
    paths = jpeg_paths(256)
    lst = Path(tmp) / "paths.txt"
    lst.write_text("\n".join(paths))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cli_cmd = [str(CLI), "embed", "--model", str(model), "--image-list", str(lst), "--out", f"{tmp}/cli.npy",
               "--threads", str(threads), "--batch-size", "32"]
    py_cmd = [sys.executable, "-c", PY_EMBED, str(model), f"{tmp}/py.npy", str(threads), "32", str(lst)]
    cli_t, py_t, call_t = [], [], []
    timed(cli_cmd, env)  # warm the page cache for both
    for _ in range(repeats):
        t, _ = timed(cli_cmd, env)
        cli_t.append(t)
        t, out = timed(py_cmd, env)
        py_t.append(t)
        call_t.append(float(out.strip()))
    identical = np.array_equal(np.load(f"{tmp}/cli.npy"), np.load(f"{tmp}/py.npy"))
    c, p = statistics.median(cli_t), statistics.median(py_t)
    return {"images": len(paths), "threads": threads, "batch_size": 32, "cli_seconds": c, "python_seconds": p,
            "python_embed_call_seconds": statistics.median(call_t), "python_over_cli": p / c,
            "cli_runs": cli_t, "python_runs": py_t, "bit_identical": bool(identical)}


def bench_tokenize(model, threads, repeats):
    import clipkit

    sys.path.insert(0, str(REPO / "bench"))
    from tokenize_peer import SimpleTokenizer

    texts = captions(10_000)
    m = clipkit.load(model, threads=threads)
    peer = SimpleTokenizer(str(model))
    m.tokenize(texts)
    [peer.encode(t) for t in texts]  # both warmed
    ours, theirs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tok = m.tokenize(texts)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids = [peer.encode(t) for t in texts]
        theirs.append(time.perf_counter() - t0)
    lens = tok["attention_mask"].sum(1)
    same = all(tok["input_ids"][i, :lens[i]].tolist() == ids[i][:77] for i in range(len(texts)))
    o, t = statistics.median(ours), statistics.median(theirs)
    return {"texts": len(texts), "threads": threads, "clipkit_seconds": o, "peer_seconds": t,
            "clipkit_texts_per_s": len(texts) / o, "peer_texts_per_s": len(texts) / t, "speedup": t / o,
            "same_ids": bool(same)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    model = Path(a.model) if a.model else default_model()
    with tempfile.TemporaryDirectory() as tmp:
        e = bench_embed(model, a.threads, a.repeats, tmp)
    t = bench_tokenize(model, a.threads, a.repeats)
    print(f"model {model}, {a.threads} threads, medians of {a.repeats}")
    print(f"embed 256 JPEG paths: clipkit embed {e['cli_seconds']:.3f} s, Python {e['python_seconds']:.3f} s "
          f"(embed_images call {e['python_embed_call_seconds']:.3f} s): Python/CLI {e['python_over_cli']:.3f} "
          f"(target <= 1.05); bit-identical: {e['bit_identical']}")
    print(f"tokenize 10,000 texts: clipkit {t['clipkit_seconds'] * 1e3:.1f} ms ({t['clipkit_texts_per_s']:.0f}/s), "
          f"OpenAI/HF slow Python tokenizer {t['peer_seconds'] * 1e3:.1f} ms ({t['peer_texts_per_s']:.0f}/s): "
          f"{t['speedup']:.1f}x (target >= 20x); same ids: {t['same_ids']}")
    if a.json:
        Path(a.json).write_text(json.dumps({"embed": e, "tokenize": t}, indent=2) + "\n")
    ok = e["python_over_cli"] <= 1.05 and e["bit_identical"] and t["speedup"] >= 20 and t["same_ids"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
