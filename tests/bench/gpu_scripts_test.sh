#!/usr/bin/env bash
# Checks of bench/gpu_check.sh's parts that run without a GPU:
#   gpu_scripts_test.sh hook CLIPKIT_BIN   clipkit_side.py (the part-2 hook) reports every row as n/a,
#                                          naming why, for a missing binary and for a CLI without
#                                          --device or without the cuda backend; report.py merges rows, computes ratios and targets
#   gpu_scripts_test.sh hf                 hf_side.py --smoke on the CPU, every section (skipped, exit
#                                          77, where python3 has no torch)
#   gpu_scripts_test.sh rows CLIPKIT_BIN DATA
#                                          clipkit_side.py --device cpu --smoke: every clipkit row's
#                                          commands run on the tiny fixtures laid out as hf_side.py's
#                                          --work (models, jpegs, parity dumps made from the float64
#                                          references of tests/data/reference), and the parity rows
#                                          meet their targets against those references
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
rows)
  data=$(cd "$3" && pwd)  # the links below need an absolute path
  w=$tmp/work
  mkdir -p "$w/models" "$w/parity"
  ln -s "$data/models/tiny-clip" "$w/models/clip-vit-b32"
  ln -s "$data/models/tiny-clip" "$w/models/clip-vit-l14"
  ln -s "$data/models/tiny-clip-roberta" "$w/models/dual-b32-rb"
  ln -s "$data/datasets/coco-tiny/train2017" "$w/jpegs"
  # hf_side.py's parity dumps, from the references (HF's float64 mirrors): embeddings of stored inputs,
  # and one step's gradients of every parameter of the dual encoder (the sparse embedding row made dense)
  "$py" - "$repo/bench/peers" "$data/reference" "$w/parity" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from safetensors_np import read_safetensors, write_safetensors
ref, out = sys.argv[2], sys.argv[3]
for name, model in (("clip-vit-b32", "tiny-clip"), ("dual-b32-rb", "tiny-clip-roberta")):
    t = read_safetensors(f"{ref}/models/{model}.safetensors")[0]
    write_safetensors(f"{out}/embed_{name}.safetensors", {
        "pixel_values": t["pixel_values"], "input_ids": t["input_ids"], "attention_mask": t["attention_mask"],
        "image_embeds": t["image_embeds_unnormalized"].astype(np.float32),
        "text_embeds": t["text_embeds_unnormalized"].astype(np.float32)})
g, meta = read_safetensors(f"{ref}/train/gradients.safetensors")
p = "tiny-clip-roberta/"
d = {"input.pixel_values": g[p + "pixel_values"], "input.input_ids": g[p + "input_ids"],
     "input.attention_mask": g[p + "attention_mask"], "loss": g[p + "loss"]}
for k, v in g.items():
    if not k.startswith(p + "grad.") or k.endswith(".values"):
        continue
    n = k[len(p + "grad."):]
    if n.endswith(".rows"):
        n = n[:-len(".rows")]
        rows, vals = v, g[k[:-len(".rows")] + ".values"]
        shape = json.loads(meta["sparse." + p + "grad." + n].split("dense shape ")[1].split(" stored")[0])
        dense = np.zeros(shape, np.float32)
        dense[rows] = vals
        d[n] = dense
    else:
        d[n] = v.astype(np.float32)
write_safetensors(f"{out}/grads_dual-b32-rb.safetensors", d)
PY
  "$py" "$repo/bench/gpu/clipkit_side.py" --bin "$2" --work "$w" --out "$tmp/ck.json" --device cpu --smoke
  "$py" - "$tmp/ck.json" <<'PY' || fail "clipkit rows on the cpu"
import json, sys
rows = {r["key"]: r for r in json.load(open(sys.argv[1]))["rows"]}
bad = {k: r["status"] for k, r in rows.items() if r["status"] != "ok"}
assert not bad, bad
for k in ("image_b32", "image_l14", "jpeg_b32", "text_b32", "latency_b32", "train_pad128", "train_dynamic"):
    assert rows[k]["value"] > 0, rows[k]
assert rows["jpeg_b32"]["files"] == 150, rows["jpeg_b32"]
assert rows["train_dynamic"]["tokens"] == 12, rows["train_dynamic"]
assert rows["parity_embed_fp32"]["value"] <= 1e-4, rows["parity_embed_fp32"]
assert 0.99 <= rows["parity_embed_bf16"]["value"] < 1, rows["parity_embed_bf16"]
g = rows["parity_grads_bf16"]
assert g["tensors"] == 81 and 0 < g["value"] < 0.05 and g["worst_tensor_rel_l2"] < 0.2, g
assert abs(g["loss"] - g["hf_loss"]) < 1e-2, g
print({k: rows[k]["value"] for k in rows})
PY
  ;;
*) echo "usage: gpu_scripts_test.sh hook CLIPKIT_BIN | hf | rows CLIPKIT_BIN DATA" >&2; exit 2 ;;
esac
echo "gpu_scripts_test $1: ok"
