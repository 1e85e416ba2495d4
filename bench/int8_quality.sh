#!/bin/bash
# int8 against fp32 (and bf16) on a model that has learned something (issue 20): the from-scratch
# model of scripts/demo.sh (clip-tiny trained on 2,000 captioned-shapes images, every weight), then
#   * zero-shot accuracy on its three held-out folder-per-class sets (`clipkit classify --eval`:
#     18 colour+shape classes, 6 colours, 3 shapes; 72 unseen images each), and
#   * text->image and image->text recall@1/5 on the 200 held-out captioned images (`clipkit eval`),
# at each precision, and the differences from fp32. (A random-weight ViT-B/32 has nothing to lose;
# tests/model's Int8Quality checks embedding cosines instead.) Accuracy does not depend on the
# CPU: where oneDNN has no int8/bf16 kernels (no AVX-512 VNNI/BF16) the same products run widened.
#   bench/int8_quality.sh [CLIPKIT] [OUT_DIR]     (~1 minute on 2 cores)
set -euo pipefail
CLIPKIT=$(realpath "${1:-build/tools/clipkit/clipkit}")
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$(mktemp -d /tmp/clipkit-int8q.XXXXXX)}
[ -f "$OUT/model/model.safetensors" ] || CLIPKIT_BIN=$CLIPKIT CLIPKIT_DEMO_OUT=$OUT "$HERE/scripts/demo.sh" > "$OUT.demo.log" 2>&1
for prec in fp32 int8 bf16; do
  for set in object colour shape; do
    "$CLIPKIT" classify --model "$OUT/model" --eval "$OUT/shapes/zeroshot/$set" --template "a {}" --precision "$prec" --json 2> /dev/null |
      python3 -c "import json,sys; j=json.load(sys.stdin); print(json.dumps({'precision': '$prec', 'zeroshot': '$set', 'accuracy': j['accuracy']}))"
  done
  "$CLIPKIT" eval --model "$OUT/model" --data "$OUT/shapes" --split val --precision "$prec" --json 2> /dev/null |
    python3 -c "import json,sys; j=json.load(sys.stdin); print(json.dumps({'precision': '$prec', 'retrieval': 'val', **{k: j[k] for k in ('t2i_r1', 't2i_r5', 'i2t_r1', 'i2t_r5', 'loss')}}))"
done | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
for r in rows: print(json.dumps(r))
ref = {(r.get("zeroshot") or r.get("retrieval")): r for r in rows if r["precision"] == "fp32"}
for p in ("int8", "bf16"):
    d = {}
    for r in rows:
        if r["precision"] != p: continue
        k = r.get("zeroshot") or r.get("retrieval")
        for m in ("accuracy", "t2i_r1", "t2i_r5", "i2t_r1", "i2t_r5"):
            if m in r: d[f"{k}.{m}"] = round(r[m] - ref[k][m], 4)
    print(json.dumps({"precision": p, "minus_fp32": d, "largest_abs": max(abs(v) for v in d.values())}))
'
