#!/usr/bin/python3
"""Prints compare_embed.sh's table from its result folder (one RUN.json per measurement).

  report.py RESULTS_DIR MODEL_DIR [--json OUT.json]

File names are LABEL.REPEAT.json with LABEL = ENGINE-PRECISION-bBATCH-PART (for clipkit PART is
"both": one run gives images/s and texts/s). Repeats are reduced to their median. GFLOP/s is
counted the same way for every engine (clip_config.image_flops / text_flops), and "% peak" is
relative to the matmul peak clipkit measured in the same run for that precision.
"""
import argparse
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_config import image_flops, load_config, text_flops  # noqa: E402

ENGINE_NAMES = {"clipkit": "clipkit", "torch": "PyTorch", "ort": "ONNX Runtime"}
# (clipkit run, peer run, part, target ratio, what the peer is)
TARGETS = [
    ("clipkit-fp32-b32", "ort-fp32-b32", "images", 1.0, "ONNX Runtime fp32, batch 32"),
    ("clipkit-fp32-b32", "torch-fp32-b32", "images", 2.0, "PyTorch fp32 eager, batch 32"),
    ("clipkit-fp32-b1", "ort-fp32-b1", "images", 1.0, "ONNX Runtime fp32, batch 1"),
    ("clipkit-bf16-b32", "torch-bf16-b32", "images", 1.3, "PyTorch bf16 autocast, batch 32"),
    ("clipkit-int8-b32", "clipkit-bf16-b32", "images", 1.5, "clipkit bf16, batch 32"),
    ("clipkit-int8-b32", "ort-int8-b32", "images", 1.2, "ONNX Runtime int8, batch 32"),
    ("clipkit-fp32-b32", "ort-fp32-b32", "texts", None, "ONNX Runtime fp32, batch 32"),
    ("clipkit-fp32-b32", "torch-fp32-b32", "texts", None, "PyTorch fp32 eager, batch 32"),
    ("clipkit-bf16-b32", "torch-bf16-b32", "texts", None, "PyTorch bf16 autocast, batch 32"),
    ("clipkit-int8-b32", "clipkit-bf16-b32", "texts", 1.5, "clipkit bf16, batch 32"),
    ("clipkit-int8-b32", "ort-int8-b32", "texts", 1.2, "ONNX Runtime int8, batch 32"),
]


def load_results(folder):
    """{run: {"images": [..], "texts": [..], "seq_len": L, "raw": [...]}} with run = ENGINE-PREC-bN."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        parts = os.path.basename(path).split(".")
        if len(parts) != 3 or len(parts[0].split("-")) != 4:
            continue  # not a LABEL.REPEAT.json result (e.g. the summary)
        engine, prec, batch, _part = parts[0].split("-")
        try:
            with open(path) as f:
                res = json.loads(f.read().strip().splitlines()[-1])
        except (ValueError, IndexError) as e:
            print(f"report: {path}: not a JSON result ({e})", file=sys.stderr)
            continue
        r = runs.setdefault(f"{engine}-{prec}-{batch}", {"images": [], "texts": [], "raw": []})
        r["raw"].append(res)
        if "images_per_s" in res:
            r["images"].append(res["images_per_s"])
        if "texts_per_s" in res:
            r["texts"].append(res["texts_per_s"])
            r["seq_len"] = res.get("seq_len", res.get("text_tokens"))
    return runs


def median(xs):
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("model_dir")
    ap.add_argument("--json", help="also write the summary here")
    a = ap.parse_args()

    cfg = load_config(a.model_dir)
    runs = load_results(a.results)
    peaks = {}  # precision -> clipkit's measured matmul peak
    emulated = {}  # precision -> clipkit's note where this CPU runs it as fp32 matmuls (`precision_note`)
    for name, r in runs.items():
        if name.startswith("clipkit-"):
            ps = [x["matmul_peak_gflops"] for x in r["raw"] if "matmul_peak_gflops" in x]
            if ps:
                peaks[name.split("-")[1]] = median(ps)
            notes = [x["precision_note"] for x in r["raw"] if x.get("precision_note")]
            if notes:
                emulated[name.split("-")[1]] = notes[0]
    img_gf = image_flops(cfg) / 1e9

    def row(name):
        engine, prec, batch = name.split("-")
        r = runs[name]
        ips, tps = median(r["images"]), median(r["texts"])
        peak = peaks.get(prec)
        gfs = ips * img_gf if ips else None
        txt_gf = tps * text_flops(cfg, r["seq_len"]) / 1e9 if tps and r.get("seq_len") else None
        raw = r["raw"][0]
        ver = raw.get("version", "")
        return {
            "run": name, "engine": ENGINE_NAMES.get(engine, engine), "version": ver, "precision": prec,
            "batch": int(batch[1:]), "images_per_s": ips, "image_gflops": gfs,
            "image_peak_fraction": gfs / peak if gfs and peak else None,
            "texts_per_s": tps, "text_gflops": txt_gf, "text_tokens": r.get("seq_len"),
            "repeats": len(r["raw"]),
        }

    order = {"clipkit": 0, "torch": 1, "ort": 2}
    names = sorted(runs, key=lambda n: (order.get(n.split("-")[0], 9), n.split("-")[1],
                                        -int(n.split("-")[2][1:])))
    rows = [row(n) for n in names]

    def fmt(x, spec):
        if x is None:  # keep the column width of the spec
            width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
            return "-".rjust(int(width or 1))
        if spec.endswith("%"):
            return format(x, spec[:-1]) + "%"
        return format(x, spec)

    v = cfg["vision"]
    print(f"\nmodel {a.model_dir}: vision {v['hidden_size']}w x {v['num_hidden_layers']} layers, "
          f"patch {v['patch_size']} @ {v['image_size']}px = {img_gf:.2f} GFLOP/image; "
          f"text {cfg['text']['hidden_size']}w x {cfg['text']['num_hidden_layers']} layers")
    if peaks:
        print("clipkit matmul peak (same run): " +
              ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in sorted(peaks.items())))
    for p, note in sorted(emulated.items()):
        print(f"clipkit {p} here: {note}")
    hdr = f"{'engine':<22}{'prec':<6}{'batch':>6}{'img/s':>10}{'GFLOP/s':>10}{'% peak':>8}" \
          f"{'txt/s':>10}{'tokens':>8}{'GFLOP/s':>10}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in rows:
        name = f"{r['engine']} {r['version']}".strip()
        pf = r["image_peak_fraction"]
        print(f"{name[:21]:<22}{r['precision']:<6}{r['batch']:>6}{fmt(r['images_per_s'], '10.2f')}"
              f"{fmt(r['image_gflops'], '10.1f')}{fmt(pf * 100 if pf else None, '7.1f%'):>8}"
              f"{fmt(r['texts_per_s'], '10.2f')}{fmt(r['text_tokens'], '8d')}{fmt(r['text_gflops'], '10.1f')}")

    by_run = {r["run"]: r for r in rows}
    ratios = []
    print("\nclipkit / peer" + " " * 40 + "ratio   target")
    for ck, peer, part, target, what in TARGETS:
        key = "images_per_s" if part == "images" else "texts_per_s"
        c, p = by_run.get(ck, {}).get(key), by_run.get(peer, {}).get(key)
        ratio = c / p if c and p else None
        verdict = "" if target is None or ratio is None else ("ok" if ratio >= target else "BELOW TARGET")
        if verdict == "BELOW TARGET" and ck.split("-")[1] in emulated:
            verdict += f" ({ck.split('-')[1]} emulated on this CPU)"
        if ratio is None:
            missing = ck if not c else peer
            verdict = f"(no {missing} result)"
        ratios.append({"clipkit": ck, "peer": peer, "part": part, "ratio": ratio, "target": target})
        tgt = f">= {target:.1f}x" if target else ""
        ratio_s = f"{ratio:6.2f}x" if ratio is not None else "     - "
        print(f"  {part:<7}{ck:<18}vs {what:<32}{ratio_s}  {tgt:<8} {verdict}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model_dir, "gflop_per_image": img_gf, "matmul_peak_gflops": peaks,
                       "emulated_precisions": emulated, "runs": rows, "ratios": ratios}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
