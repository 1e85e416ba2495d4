#!/usr/bin/env python3
"""clipkit's side of bench/gpu_check.sh -- THE HOOK for issue 16 part 2.

  clipkit_side.py --bin BUILD/tools/clipkit/clipkit --work DIR --out clipkit.json

Writes one row per key of rows.ROWS and rows.PARITY, each with status "ok" and a value, or
"n/a: <why>". The standalone GPU build's clipkit (issue 16 part 2) has `bench/embed/train
--device cuda`: where this finds a binary with --device it runs the `bench embed` rows below (the
rest stay n/a, naming the command still to wire in here); without a binary, or one without
--device, every row says so, and the run goes on to the end.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows import PARITY, ROWS  # noqa: E402

PART2 = "issue 16 part 2 (clipkit bench/embed/train --device cuda)"


def has_device_flag(binary):
    try:
        r = subprocess.run([binary, "bench", "embed", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{binary} does not run ({e})"
    text = r.stdout + r.stderr
    if "--device" not in text:
        return False, "this clipkit has no --device"
    built = re.search(r"built: ([^;)]*)", text)  # --device's help names the backends built
    if built and "cuda" not in built.group(1).split(", "):
        return False, f"this clipkit was built without the cuda backend (built: {built.group(1)})"
    return True, ""


def bench_embed(binary, model, batch, extra):
    cmd = [binary, "bench", "embed", "--model", model, "--device", "cuda", "--precision", "bf16",
           "--batch-size", str(batch), "--json"] + extra
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the clipkit binary (need not exist)")
    ap.add_argument("--work", required=True, help="hf_side.py's --work (its models/)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = {k: {"key": k, "engine": "clipkit", "value": None, "unit": v[1]} for k, v in {**ROWS, **PARITY}.items()}
    if not os.path.exists(a.bin):
        why = f"n/a: this build has no clipkit CLI ({a.bin}); needs {PART2}"
        for r in rows.values():
            r["status"] = why
    else:
        ok, why = has_device_flag(a.bin)
        for r in rows.values():
            r["status"] = f"n/a: {why}; needs {PART2}" if not ok else "n/a: not wired into bench/gpu/clipkit_side.py yet"
        if ok:
            models = os.path.join(a.work, "models")
            runs = [("image_b32", "text_b32", os.path.join(models, "clip-vit-b32"), 1024, []),
                    ("image_l14", None, os.path.join(models, "clip-vit-l14"), 256, ["--no-text"]),
                    ("latency_b32", None, os.path.join(models, "clip-vit-b32"), 1, ["--no-text"])]
            for img_key, txt_key, model, batch, extra in runs:
                try:
                    j = bench_embed(a.bin, model, batch, extra)
                except Exception as e:  # noqa: BLE001 -- reported in the row
                    for k in (img_key, txt_key):
                        if k:
                            rows[k]["status"] = f"error: {e}"[:300]
                    continue
                if img_key == "latency_b32":
                    rows[img_key].update(value=1e3 / j["images_per_s"], status="ok")
                else:
                    rows[img_key].update(value=j["images_per_s"], status="ok")
                if txt_key and "texts_per_s" in j:
                    rows[txt_key].update(value=j["texts_per_s"], status="ok", tokens=j.get("text_tokens"))
    with open(a.out, "w") as f:
        json.dump({"rows": list(rows.values())}, f, indent=1)
    n_ok = sum(r["status"] == "ok" for r in rows.values())
    print(f"clipkit_side: {n_ok} of {len(rows)} rows measured; the others: "
          f"{sorted({r['status'] for r in rows.values() if r['status'] != 'ok'})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
