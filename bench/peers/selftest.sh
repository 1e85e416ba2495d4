#!/usr/bin/env bash
# Proves the peers compute what HF CLIPModel computes before their timings mean anything:
# torch_clip.py (float64 and float32) and its ONNX export run by onnxruntime-node, both against the
# float64 tiny-clip references in tests/data. Takes ~20 s. Needs setup.sh's packages.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=$here/../../tests/data
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
"$python" "$here/torch_clip.py" --check --model "$data/models/tiny-clip" \
  --ref "$data/reference/models/tiny-clip.safetensors" || fail=1
for part in vision text; do
  "$python" "$here/export_onnx.py" "$data/models/tiny-clip" "$tmp/$part.onnx" --part "$part"
  node "$here/ort_bench.mjs" "$tmp/$part.onnx" --part "$part" \
    --check "$data/reference/models/tiny-clip.safetensors" || fail=1
done
if ((fail)); then echo "peers selftest: FAIL"; exit 1; fi
echo "peers selftest: PASS"
