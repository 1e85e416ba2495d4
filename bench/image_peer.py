#!/usr/bin/python3
"""Peer for bench/image_bench: the Pillow path of HF CLIPImageProcessor on one core.

Usage: /usr/bin/python3 bench/image_peer.py DIR SIZE REPEATS [--dump OUT.npy]
Times (a) decode only: Image.open + load, and (b) the whole path: decode, convert("RGB"),
BICUBIC resize to HF's shortest-edge size, numpy center crop, rescale in float64 -> float32,
normalize, HWC -> CHW. Pinned to one CPU. Prints one JSON line with images/s (median of REPEATS).
Needs Debian's python3-pil and python3-numpy (apt-get install python3-pil python3-numpy).
"""
import json, os, sys, time
import numpy as np
from PIL import Image, __version__ as pil_version

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess(path, size):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    nl = int(size * long / short)
    nw, nh = (size, nl) if w <= h else (nl, size)
    a = np.asarray(im.resize((nw, nh), Image.BICUBIC))
    top, left = (nh - size) // 2, (nw - size) // 2  # no padding needed: shortest edge == crop
    a = a[top:top + size, left:left + size]
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def decode(path):
    im = Image.open(path)
    im.load()
    return im


def main():
    d, size, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dump = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--dump" else None
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
    for f in files[:2]:  # warm up
        preprocess(f, size)

    def rate(fn):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            for f in files:
                fn(f)
            times.append(time.perf_counter() - t)
        return len(files) / sorted(times)[len(times) // 2]

    decode_rate = rate(decode)
    full_rate = rate(lambda f: preprocess(f, size))
    if dump:
        np.save(dump, np.stack([preprocess(f, size) for f in files]))
    print(json.dumps({"pillow": pil_version, "images": len(files), "decode_per_s": decode_rate,
                      "full_per_s": full_rate}))


if __name__ == "__main__":
    main()
