#!/usr/bin/env python3
"""Merges bench/gpu_check.sh's parts into one table (printed) and one JSON file.

  report.py --out gpu_check.json [--hf hf.json ...] [--clipkit clipkit.json] [--tests gtest.json]
            [--info KEY=VALUE ...]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows import PARITY, ROWS  # noqa: E402


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{path}: {e}"}


def tests_summary(path):
    """gtest's --gtest_output=json: passed / failed / skipped counts and the failed names."""
    j = load(path)
    if "error" in j:
        return {"error": j["error"]}
    passed = failed = skipped = 0
    failed_names = []
    for suite in j.get("testsuites", []):
        for t in suite.get("testsuite", []):
            if t.get("failures"):
                failed += 1
                failed_names.append(f"{suite.get('name')}.{t.get('name')}")
            elif t.get("result") == "SKIPPED":
                skipped += 1
            else:
                passed += 1
    return {"passed": passed, "failed": failed, "skipped": skipped, "failed_names": failed_names}


def fmt(v):
    if isinstance(v, (int, float)):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return "-" if v is None else str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--hf", action="append", default=[])
    ap.add_argument("--clipkit")
    ap.add_argument("--tests")
    ap.add_argument("--info", action="append", default=[], help="KEY=VALUE lines for the header")
    ap.add_argument("--raw-dir", help="a folder of the parts' JSON files, copied into the output as they are")
    a = ap.parse_args()
    info = dict(kv.split("=", 1) for kv in a.info)
    hf = {}
    for p in a.hf:
        j = load(p)
        info.update({f"hf_{k}": v for k, v in j.get("info", {}).items()})
        if "error" in j:
            key = f"error_{os.path.basename(p)}"
            hf[key] = {"key": key, "value": "error", "what": j["error"]}
        for r in j.get("rows", []):
            hf[r["key"]] = r
    ck = {r["key"]: r for r in load(a.clipkit).get("rows", [])} if a.clipkit else {}
    tests = tests_summary(a.tests) if a.tests else None

    out_rows = []
    for key, (what, unit, higher, target) in ROWS.items():
        h, c = hf.get(key, {}), ck.get(key, {})
        hv = h.get("value") if isinstance(h.get("value"), (int, float)) else None
        cv = c.get("value") if c.get("status") == "ok" else None
        ratio = None
        if hv and cv:
            ratio = cv / hv if higher else hv / cv
        met = None
        if target and cv is not None:
            kind, bound = target
            met = (ratio is not None and ratio >= bound) if kind == "ratio" else (cv >= bound if higher else cv <= bound)
        out_rows.append({"key": key, "what": what, "unit": unit, "hf": h.get("value"), "hf_what": h.get("what"),
                         "clipkit": cv, "clipkit_status": c.get("status", "n/a: no clipkit row"), "ratio": ratio,
                         "target": target, "target_met": met})
    for key, (what, unit, target) in PARITY.items():
        c = ck.get(key, {})
        out_rows.append({"key": key, "what": what, "unit": unit, "clipkit": c.get("value") if c.get("status") == "ok" else None,
                         "clipkit_status": c.get("status", "n/a: no clipkit row"), "target": target})
    extra = [r for k, r in hf.items() if k not in ROWS]  # model making, parity dumps, errors

    dev = info.get("hf_device", info.get("device", "?"))
    print(f"\nclipkit bench/gpu_check.sh on {dev}: torch {info.get('hf_torch', '?')}, transformers "
          f"{info.get('hf_transformers', '?')}, commit {info.get('commit', '?')}")
    for k in ("build", "build_seconds", "total_seconds"):
        if k in info:
            print(f"  {k}: {info[k]}")
    if tests:
        print(f"  GPU tests: {tests}")
    print(f"\n{'row':20s} {'unit':10s} {'HF':>12s} {'clipkit':>12s} {'ratio':>7s}  target    clipkit status")
    notes = []  # the long "n/a: ..." reasons, once each
    for r in out_rows:
        t = r["target"]
        ts = "" if not t else (f">= {t[1]}x" if t[0] == "ratio" else f"{'>=' if t[0] in ('abs', 'ge') else '<='} {t[1]}")
        if r["key"] == "latency_b32" and t:
            ts = f"<= {t[1]} ms"
        status = r["clipkit_status"]
        if status != "ok":
            if status not in notes:
                notes.append(status)
            status = f"[{notes.index(status) + 1}]"
        if r.get("target_met") is not None:
            status += " (target met)" if r["target_met"] else " (TARGET MISSED)"
        print(f"{r['key']:20s} {r['unit']:10s} {fmt(r.get('hf')):>12s} {fmt(r['clipkit']):>12s} "
              f"{fmt(r.get('ratio')):>7s}  {ts:9s} {status}")
    for i, n in enumerate(notes):
        print(f"  [{i + 1}] {n}")
    if extra:
        print("\nHF side, other rows:")
        for r in extra:
            print(f"  {r['key']:28s} {fmt(r.get('value')):>10s} {r.get('unit', ''):8s} {r.get('what', '')}")
    parts = {}
    if a.raw_dir and os.path.isdir(a.raw_dir):
        parts = {n: load(os.path.join(a.raw_dir, n)) for n in sorted(os.listdir(a.raw_dir)) if n.endswith(".json")}
    with open(a.out, "w") as f:
        json.dump({"info": info, "tests": tests, "rows": out_rows, "hf_other": extra, "parts": parts}, f, indent=1)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
