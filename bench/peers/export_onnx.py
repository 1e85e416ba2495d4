#!/usr/bin/python3
"""Exports a CLIP tower of an HF CLIPModel folder to ONNX with torch.onnx.export (fp32).

  export_onnx.py MODEL_DIR OUT.onnx [--part vision|text] [--opset 14] [--check]

vision: input  pixel_values   float32 [N, 3, H, W]      -> image_embeds float32 [N, P] (L2-normalised)
text:   inputs input_ids      int64   [N, L]
               attention_mask int64   [N, L]            -> text_embeds  float32 [N, P] (L2-normalised)
N (and L for text) are dynamic axes. The graph is torch_clip.py's model, the same computation as HF
CLIPModel.get_{image,text}_features followed by L2 normalisation. Weights bigger than 2 GiB in total
(ViT-L/14 is 1.7 GB, so all the openai sizes fit) would need external data; not handled.
"""
import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--part", choices=("vision", "text"), default="vision")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
    import torch
    from torch_clip import ImageEncoder, TextEncoder, bench_captions, load_model

    torch.set_num_threads(a.threads)
    model = load_model(a.model_dir)
    if a.part == "vision":
        v = model.config["vision"]
        enc = ImageEncoder(model).eval()
        args = (torch.randn(2, v["num_channels"], v["image_size"], v["image_size"]),)
        names, out = ["pixel_values"], "image_embeds"
        axes = {"pixel_values": {0: "batch"}, out: {0: "batch"}}
    else:
        enc = TextEncoder(model).eval()
        ids, mask = bench_captions(3)
        args = (torch.from_numpy(ids), torch.from_numpy(mask))
        names, out = ["input_ids", "attention_mask"], "text_embeds"
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                out: {0: "batch"}}
    tmp = a.out + ".tmp"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes
        torch.onnx.export(enc, args, tmp, input_names=names, output_names=[out], dynamic_axes=axes,
                          opset_version=a.opset, do_constant_folding=True)
    os.replace(tmp, a.out)
    print(f"{a.out}: {a.part} tower, opset {a.opset}, {os.path.getsize(a.out) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
