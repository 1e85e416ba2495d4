#!/usr/bin/env python3
"""clipkit's side of bench/gpu_check.sh (issue 16).

  clipkit_side.py --bin BUILD/tools/clipkit/clipkit --work DIR --out clipkit.json [--device cuda] [--smoke]

Writes one row per key of rows.ROWS and rows.PARITY, each with status "ok" and a value, or
"n/a: <why>" / "error: <why>". Over hf_side.py's --work (its models/, jpegs/ and parity/):
  image_b32, text_b32, image_l14, latency_b32  clipkit bench embed (tensors; bf16)
  jpeg_b32       clipkit bench embed --folder DIR/jpegs (files -> embeddings, decode workers = all cores)
  train_pad128   clipkit bench train, dual-b32-rb, batch 256, captions padded to 128, bf16, dropout on,
                 AdamW wd 0.1, clipping at 1.0 (hf_side.py's run_clip step)
  train_dynamic  the same at batch 512 padded to 24
  parity_embed_fp32  clipkit bench parity (fp32) on parity/embed_<model>.safetensors' inputs vs HF's fp32
                 embeddings: the largest per-embedding relative L2 error |ck - hf| / |hf| over both models,
                 images and texts
  parity_embed_bf16  the same in bf16: the smallest cosine similarity with HF's fp32 embedding
  parity_grads_bf16  clipkit bench parity --grads (bf16, dropout off) on grads_dual-b32-rb.safetensors'
                 inputs vs HF's fp32 gradients: relative L2 over all parameters,
                 sqrt(sum |g_ck - g_hf|^2 / sum |g_hf|^2) -- the norm of hf_side.py's parity_hf_bf16_grad_err
Without a binary, or one without --device or without the device's backend, every row says so and
the run goes on to the end. --device cpu and --smoke (small batches) check the rows' code paths on a
machine without a GPU (tests/bench/gpu_scripts_test.sh).
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows import PARITY, ROWS  # noqa: E402

PART2 = "a clipkit CLI with the cuda device (the standalone GPU build: scripts/build.sh cuda)"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers"))


def has_device_flag(binary, device="cuda"):
    try:
        r = subprocess.run([binary, "bench", "embed", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{binary} does not run ({e})"
    text = r.stdout + r.stderr
    if "--device" not in text:
        return False, "this clipkit has no --device"
    built = re.search(r"built: ([^;)]*)", text)  # --device's help names the backends built
    if built and device not in built.group(1).split(", "):
        return False, f"this clipkit was built without the {device} backend (built: {built.group(1)})"
    return True, ""


def clipkit(binary, args, device, timeout=600):
    """`clipkit ARGS --device DEVICE`; its last stdout line as JSON (None when it prints none)."""
    cmd = [binary] + args + ["--device", device]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def bench_embed(binary, model, batch, extra, device):
    return clipkit(binary, ["bench", "embed", "--model", model, "--precision", "bf16", "--batch-size", str(batch),
                            "--json"] + extra, device)


def parity_rows(a, rows, parity):
    """parity_*: clipkit's embeddings / gradients of HF's inputs against HF's (numpy)."""
    import numpy as np
    from safetensors_np import read_safetensors

    def rel_l2(ck, hf):  # per row
        return np.linalg.norm(ck - hf, axis=1) / np.maximum(np.linalg.norm(hf, axis=1), 1e-30)

    def cosine(ck, hf):
        return (ck * hf).sum(1) / np.maximum(np.linalg.norm(ck, axis=1) * np.linalg.norm(hf, axis=1), 1e-30)

    out = os.path.join(a.work, "parts")
    os.makedirs(out, exist_ok=True)
    for key, prec, stat in (("parity_embed_fp32", "fp32", "max_rel_l2"), ("parity_embed_bf16", "bf16", "min_cos")):
        try:
            worst, where = None, ""
            for name in ("clip-vit-b32", "dual-b32-rb"):
                ref = os.path.join(parity, f"embed_{name}.safetensors")
                got = os.path.join(out, f"ck_embed_{name}_{prec}.safetensors")
                clipkit(a.bin, ["bench", "parity", "--model", os.path.join(a.work, "models", name), "--inputs", ref,
                                "--out", got, "--precision", prec], a.device)
                hf, ck = read_safetensors(ref)[0], read_safetensors(got)[0]
                for t in ("image_embeds", "text_embeds"):
                    x, y = ck[t].astype(np.float64), hf[t].astype(np.float64)
                    v = float(rel_l2(x, y).max()) if stat == "max_rel_l2" else float(cosine(x, y).min())
                    if worst is None or (v > worst if stat == "max_rel_l2" else v < worst):
                        worst, where = v, f"{name} {t}"
            rows[key].update(value=worst, status="ok", norm=stat, worst=where)
        except Exception as e:  # noqa: BLE001 -- reported in the row
            rows[key]["status"] = f"error: {e}"[:300]
    try:
        name = "dual-b32-rb"
        ref = os.path.join(parity, f"grads_{name}.safetensors")
        got = os.path.join(out, f"ck_grads_{name}_bf16.safetensors")
        clipkit(a.bin, ["bench", "parity", "--grads", "--model", os.path.join(a.work, "models", name), "--inputs", ref,
                        "--out", got, "--precision", "bf16"], a.device)
        hf, ck = read_safetensors(ref)[0], read_safetensors(got)[0]
        names = [n for n in hf if not n.startswith("input.") and n != "loss"]
        missing = [n for n in names if n not in ck]
        if missing:
            raise RuntimeError(f"clipkit wrote no gradient for {len(missing)} of HF's {len(names)}: {missing[:5]}")
        num = sum(float(((ck[n].astype(np.float64) - hf[n].astype(np.float64)) ** 2).sum()) for n in names)
        den = sum(float((hf[n].astype(np.float64) ** 2).sum()) for n in names)
        # the worst tensor among those with a gradient (attention's key bias has none: softmax ignores it)
        worst = max((float(np.linalg.norm(ck[n].astype(np.float64) - hf[n]) / np.linalg.norm(hf[n])), n)
                    for n in names if np.linalg.norm(hf[n]) > 1e-9 * den ** 0.5)
        rows["parity_grads_bf16"].update(value=(num / den) ** 0.5, status="ok", norm="rel L2 over all parameters",
                                         tensors=len(names), worst_tensor=worst[1], worst_tensor_rel_l2=worst[0],
                                         loss=float(ck["loss"]), hf_loss=float(hf["loss"]))
    except Exception as e:  # noqa: BLE001
        rows["parity_grads_bf16"]["status"] = f"error: {e}"[:300]


def measure(a, rows):
    models = os.path.join(a.work, "models")
    b32, l14, dual = (os.path.join(models, n) for n in ("clip-vit-b32", "clip-vit-l14", "dual-b32-rb"))
    small = a.smoke
    runs = [("image_b32", "text_b32", b32, 4 if small else 1024, []),
            ("image_l14", None, l14, 4 if small else 256, ["--no-text"]),
            ("latency_b32", None, b32, 1, ["--no-text"]),
            ("jpeg_b32", None, b32, 4 if small else 256,
             ["--no-text", "--no-images", "--iters", "1", "--folder", os.path.join(a.work, "jpegs")])]
    for img_key, txt_key, model, batch, extra in runs:
        try:
            j = bench_embed(a.bin, model, batch, extra, a.device)
        except Exception as e:  # noqa: BLE001 -- reported in the row
            for k in (img_key, txt_key):
                if k:
                    rows[k]["status"] = f"error: {e}"[:300]
            continue
        if img_key == "latency_b32":
            rows[img_key].update(value=1e3 / j["images_per_s"], status="ok")
        elif img_key == "jpeg_b32":
            rows[img_key].update(value=j["files_per_s"], status="ok", files=j["files"], workers=j["threads"])
        else:
            rows[img_key].update(value=j["images_per_s"], status="ok")
        if txt_key and "texts_per_s" in j:
            rows[txt_key].update(value=j["texts_per_s"], status="ok", tokens=j.get("text_tokens"))
    # hf_side.py's sec_train: the run_clip step; its dynamic-padding row is batch 512 padded to 24
    for key, batch, pad in (("train_pad128", 256, "128"), ("train_dynamic", 512, "24")):
        if small:
            batch, pad = 4, "12"
        try:
            j = clipkit(a.bin, ["bench", "train", "--model", dual, "--precision", "bf16", "--batch-size", str(batch),
                                "--padding", pad, "--steps", "1" if small else "3", "--warmup", "1" if small else "2",
                                "--json"], a.device)
            rows[key].update(value=j[0]["samples_per_s"], status="ok", batch=batch, tokens=j[0]["seq_len"],
                             step_s=j[0]["step_s"])
        except Exception as e:  # noqa: BLE001
            rows[key]["status"] = f"error: {e}"[:300]
    parity_rows(a, rows, os.path.join(a.work, "parity"))
    # HF under torch.compile against clipkit's one image_b32 measurement
    if rows["image_b32"]["status"] == "ok":
        rows["image_b32_compiled"].update(value=rows["image_b32"]["value"], status="ok", same_as="image_b32")
    else:
        rows["image_b32_compiled"]["status"] = rows["image_b32"]["status"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the clipkit binary (need not exist)")
    ap.add_argument("--work", required=True, help="hf_side.py's --work (its models/)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda", help="cuda (the GPU machine); cpu checks the rows' code paths")
    ap.add_argument("--smoke", action="store_true", help="small batches (hf_side.py --smoke's toy models)")
    a = ap.parse_args()
    rows = {k: {"key": k, "engine": "clipkit", "value": None, "unit": v[1]} for k, v in {**ROWS, **PARITY}.items()}
    if not os.path.exists(a.bin):
        why = f"n/a: this build has no clipkit CLI ({a.bin}); needs {PART2}"
        for r in rows.values():
            r["status"] = why
    else:
        ok, why = has_device_flag(a.bin, a.device)
        for r in rows.values():
            r["status"] = f"n/a: {why}; needs {PART2}" if not ok else "n/a: not run"
        if ok:
            measure(a, rows)
    with open(a.out, "w") as f:
        json.dump({"rows": list(rows.values())}, f, indent=1)
    n_ok = sum(r["status"] == "ok" for r in rows.values())
    print(f"clipkit_side: {n_ok} of {len(rows)} rows measured; the others: "
          f"{sorted({r['status'] for r in rows.values() if r['status'] != 'ok'})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
