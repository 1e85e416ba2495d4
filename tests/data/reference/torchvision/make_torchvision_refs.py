#!/usr/bin/python3
"""References for clipkit's torchvision image backend: what transformers 5's CLIPImageProcessor
(TorchVisionBackend, its default) computes on CPU, step for step, with the installed torch and
torchvision:

  PIL decode + convert("RGB") -> pil_to_tensor (uint8, CHW)
  -> resize to HF's shortest-edge size: torchvision resize(BICUBIC, antialias=True) on the uint8 tensor
  -> TorchVisionBackend.center_crop: pad (crop - size) // 2 before, (crop - size + 1) // 2 after, then
     crop at int((size - crop) / 2.0)
  -> fused rescale + normalize: mean, std = torch.tensor(...) * (1 / rescale_factor); normalize(x.float())

(transformers 5 itself needs torch >= 2.2 and cannot be installed next to Debian 12's torch 1.13,
so its steps are written out here; they follow image_processing_backends.py of transformers 5.)

Run with Debian's interpreter, from this folder:
  /usr/bin/python3 make_torchvision_refs.py [--save-decoded DIR | --decoded DIR]
--save-decoded DIR also stores each image as Pillow decoded it (DIR/<image>.npy); --decoded DIR
takes the images from there instead of decoding them, so that a run under another Pillow (whose
decoders differ, e.g. on PNG palettes shorter than the bit depth) resizes the same pixels as
Debian 12's Pillow 9.4, which clipkit's decoders reproduce. It writes torch-<version>.safetensors.gz: per case NAME a uint8 tensor NAME [C, C, 3] (the crop,
HWC, before rescale/normalize), "values" float32 [3, 256] (what rescale + normalize make of each
uint8 value per channel, by running the fused normalize on the values 0..255), and metadata
"cases" (JSON: name, image, shortest_edge, crop, resized size) and the versions used.

The files in this folder were made with
  - Debian 12 (bookworm): python3-torch 1.13.1+dfsg-4, python3-torchvision 0.14.1-2, python3-pil 9.4.0:
    torchvision 0.14 resizes a uint8 tensor in float32 (uint8 -> float -> interpolate -> clamp ->
    round half to even -> uint8);
    (Debian's 1.13.1 reports itself as 1.13.0a0), images decoded here and saved with --save-decoded;
  - Debian 13 (trixie, in a debootstrap chroot): python3-torch 2.6.0+dfsg-7,
    python3-torchvision 0.21.0-3, run with --decoded (the Debian 12 decodes): torchvision >= 0.17
    hands the uint8 tensor to ATen's native uint8 antialiased bicubic kernel (PyTorch >= 2.1), the
    path transformers 5 with PyTorch 2.11 / torchvision 0.26 takes on CPU. Debian's torch 2.6 is
    built without ATen's AVX2 kernels ("NO AVX"), so it ran ATen's scalar uint8 fallback, which
    computes the same integer sums as the AVX2 kernel.
"""
import argparse
import glob
import gzip
import json
import os
import struct

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode

try:  # torchvision >= 0.15: the functional API transformers 5 calls
    from torchvision.transforms.v2 import functional as tvF
except ImportError:
    from torchvision.transforms import functional as tvF

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.normpath(os.path.join(HERE, "..", "..", "images"))
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
RESCALE = 1 / 255


def hf_resize_size(h, w, shortest_edge):
    # transformers' get_resize_output_image_size(default_to_square=False)
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def tv_center_crop(t, crop):
    # transformers 5 TorchVisionBackend.center_crop
    h, w = t.shape[-2:]
    if crop > w or crop > h:
        pad = [(crop - w) // 2 if crop > w else 0, (crop - h) // 2 if crop > h else 0,
               (crop - w + 1) // 2 if crop > w else 0, (crop - h + 1) // 2 if crop > h else 0]
        t = tvF.pad(t, pad, fill=0)
        h, w = t.shape[-2:]
        if crop == w and crop == h:
            return t
    top, left = int((h - crop) / 2.0), int((w - crop) / 2.0)
    return tvF.crop(t, top, left, crop, crop)


def fused_normalize(x):
    # TorchVisionBackend._fuse_mean_std_and_rescale_factor + _rescale_and_normalize
    mean = torch.tensor(MEAN) * (1.0 / RESCALE)
    std = torch.tensor(STD) * (1.0 / RESCALE)
    return tvF.normalize(x.to(dtype=torch.float32), mean, std)


def decode(path, rel, args):
    if args.decoded:
        return np.load(os.path.join(args.decoded, rel + ".npy"))
    img = Image.open(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    a = np.asarray(img)
    if args.save_decoded:
        os.makedirs(os.path.dirname(os.path.join(args.save_decoded, rel + ".npy")), exist_ok=True)
        np.save(os.path.join(args.save_decoded, rel + ".npy"), a)
    return a


def process(rgb, shortest_edge, crop):
    t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)  # = pil_to_tensor: uint8 CHW (channels-last strides)
    h, w = t.shape[-2:]
    nh, nw = hf_resize_size(h, w, shortest_edge)
    r = tvF.resize(t, [nh, nw], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert r.dtype == torch.uint8
    c = tv_center_crop(r, crop)
    return c.permute(1, 2, 0).contiguous().numpy(), (nh, nw)


def save_safetensors_gz(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": {"uint8": "U8", "float32": "F32"}[str(a.dtype)], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--save-decoded")
    g.add_argument("--decoded")
    args = ap.parse_args()
    exts = (".jpg", ".png", ".webp", ".gif", ".bmp")
    top = sorted(f for f in glob.glob(os.path.join(IMAGES, "*")) if f.lower().endswith(exts))
    extra = sorted(f for f in glob.glob(os.path.join(IMAGES, "extra", "*")) if f.lower().endswith(exts))
    plan = [(f, 224, 224) for f in top] + [(f, 64, 64) for f in top + extra] + [(f, 61, 64) for f in top]
    tensors, cases = {}, []
    for path, se, crop in plan:
        rel = os.path.relpath(path, IMAGES)
        name = f"{rel}@{se}-{crop}"
        u8, (nh, nw) = process(decode(path, rel, args), se, crop)
        tensors[name] = u8
        cases.append({"name": name, "image": rel, "shortest_edge": se, "crop": crop, "resized_height": nh,
                      "resized_width": nw})
    vals = fused_normalize(torch.arange(256, dtype=torch.uint8).expand(3, 1, 256).contiguous())
    tensors["values"] = vals.reshape(3, 256).numpy()
    cpu = getattr(torch.backends, "cpu", None)
    meta = {"cases": json.dumps(cases), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "pillow": PIL.__version__ if not args.decoded else "decoded by another run",
            "cpu_capability": cpu.get_cpu_capability() if cpu else "n/a"}
    ver = torch.__version__.split("+")[0]
    out = os.path.join(HERE, f"torch-{ver}.safetensors.gz")
    save_safetensors_gz(out, tensors, meta)
    print(out, len(cases), "cases", meta["torch"], meta["torchvision"], meta["pillow"], meta["cpu_capability"])


if __name__ == "__main__":
    main()
