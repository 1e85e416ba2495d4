#!/usr/bin/env bash
# Checks of bench/gpu_check.sh's parts that run without a GPU:
#   gpu_scripts_test.sh hook CLIPKIT_BIN   clipkit_side.py (the part-2 hook) reports every row as n/a,
#                                          naming why, for a missing binary and for a CLI without
#                                          --device or without the cuda backend; report.py merges rows, computes ratios and targets
#   gpu_scripts_test.sh hf                 hf_side.py --smoke on the CPU, every section (skipped, exit
#                                          77, where python3 has no torch)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAILED: $*" >&2; exit 1; }

case "${1:-}" in
hook)
  "$py" "$repo/bench/gpu/clipkit_side.py" --bin "$tmp/none/clipkit" --work "$tmp" --out "$tmp/missing.json"
  "$py" - "$tmp/missing.json" <<'PY' || fail "missing binary"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert len(rows) == 11, len(rows)
assert all(r["status"].startswith("n/a: this build has no clipkit CLI") and r["value"] is None for r in rows), rows
PY
  mkdir -p "$tmp/old"
  printf '#!/bin/sh\necho "Usage: clipkit bench embed [OPTIONS]"\n' > "$tmp/old/clipkit"
  chmod +x "$tmp/old/clipkit"
  "$py" "$repo/bench/gpu/clipkit_side.py" --bin "$tmp/old/clipkit" --work "$tmp" --out "$tmp/old.json"
  "$py" - "$tmp/old.json" <<'PY' || fail "a CLI without --device"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert all("has no --device" in r["status"] for r in rows), rows
PY
  # this build's CLI: its --device help names the backends built; without cuda every row says so
  "$py" "$repo/bench/gpu/clipkit_side.py" --bin "$2" --work "$tmp" --out "$tmp/cpu.json"
  "$py" - "$tmp/cpu.json" <<'PY' || fail "a CLI without the cuda backend"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert all("has no --device" in r["status"] or "built without the cuda backend" in r["status"] for r in rows), rows
PY
  # report.py: one measured clipkit row at twice HF's rate meets its 1.5x target; a latency row misses
  cat > "$tmp/hf.json" <<'JSON'
{"info": {"device": "Test GPU", "torch": "t", "transformers": "x"},
 "rows": [{"key": "image_b32", "value": 1000.0, "unit": "images/s"}, {"key": "latency_b32", "value": 4.0, "unit": "ms"},
          {"key": "parity_hf_bf16_grad_err", "value": 0.004, "unit": "rel L2", "what": "yardstick"}]}
JSON
  "$py" - "$tmp/missing.json" "$tmp/ck.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for r in j["rows"]:
    if r["key"] == "image_b32": r.update(status="ok", value=2000.0)
    if r["key"] == "latency_b32": r.update(status="ok", value=1.25)
json.dump(j, open(sys.argv[2], "w"))
PY
  "$py" "$repo/bench/gpu/report.py" --out "$tmp/out.json" --hf "$tmp/hf.json" --hf "$tmp/absent.json" \
    --clipkit "$tmp/ck.json" --tests "$tmp/absent_tests.json" --info commit=abc > "$tmp/table.txt"
  cat "$tmp/table.txt"
  grep -q "on Test GPU" "$tmp/table.txt" || fail "header"
  grep -E "^image_b32 .* 2 .*\(target met\)" "$tmp/table.txt" || fail "image_b32 ratio"
  grep -E "^latency_b32 .*\(TARGET MISSED\)" "$tmp/table.txt" || fail "latency target"
  "$py" - "$tmp/out.json" <<'PY' || fail "report JSON"
import json, sys
j = json.load(open(sys.argv[1]))
rows = {r["key"]: r for r in j["rows"]}
assert rows["image_b32"]["ratio"] == 2.0 and rows["image_b32"]["target_met"] is True, rows["image_b32"]
assert rows["latency_b32"]["ratio"] == 3.2 and rows["latency_b32"]["target_met"] is False, rows["latency_b32"]
assert rows["text_b32"]["clipkit"] is None and rows["text_b32"]["clipkit_status"].startswith("n/a"), rows["text_b32"]
assert "error" in j["tests"], j["tests"]
assert any(r["key"] == "parity_hf_bf16_grad_err" for r in j["hf_other"])
PY
  ;;
hf)
  "$py" -c "import torch, PIL, numpy" 2>/dev/null || { echo "no torch / Pillow for $py: skipped"; exit 77; }
  "$py" "$repo/bench/gpu/hf_side.py" --smoke --cpu --out "$tmp/hf.json" --work "$tmp/work" \
    --sections make,image,jpeg,text,latency,train,parity,compile
  "$py" - "$tmp/hf.json" "$tmp/work" <<'PY' || fail "hf_side rows"
import json, os, sys
rows = {r["key"]: r for r in json.load(open(sys.argv[1]))["rows"]}
assert not [k for k in rows if k.startswith("error_")], rows
for k in ("image_b32", "image_l14", "jpeg_b32", "text_b32", "latency_b32", "train_pad128", "train_dynamic"):
    assert isinstance(rows[k]["value"], float) and rows[k]["value"] > 0, rows[k]
assert rows["image_b32_compiled"]["value"] in ("n/a",) or rows["image_b32_compiled"]["value"] > 0
w = sys.argv[2]
for f in ("parity/embed_clip-vit-b32.safetensors", "parity/embed_dual-b32-rb.safetensors",
          "parity/grads_dual-b32-rb.safetensors", "models/clip-vit-b32/vocab.json"):
    assert os.path.getsize(os.path.join(w, f)) > 0, f
PY
  ;;
*) echo "usage: gpu_scripts_test.sh hook CLIPKIT_BIN | hf" >&2; exit 2 ;;
esac
echo "gpu_scripts_test $1: ok"
