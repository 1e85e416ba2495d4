#!/bin/bash
# Distributed bulk embedding (issue 19): N images (default 8,000) as WebDataset shards in
# img2dataset's layout (KEY.jpg + KEY.txt + KEY.json, 1,000 per shard), embedded end to end
# (tar streaming, JPEG decode, preprocess, a CPU-bound tiny model, output shards) by
#   1 process on 1 core, 1 process x 2 threads, `mpirun -np 2` (1 core each),
# and, as the peer, the same images as a folder of files by 1 process x 2 threads.
#   bench/embed_scale_bench.sh [CLIPKIT] [N] [REPEATS]
# The JPEGs are the COCO-format test photos (640x480-ish), repeated under distinct keys; the model is
# `clipkit init --arch clip-tiny` (64 px, 2 layers). Prints one JSON line per run, then the medians
# and the ratios. Run it alone on the machine (bench lock / quiet window).
set -euo pipefail
CLIPKIT=$(realpath "${1:-build/tools/clipkit/clipkit}")
N=${2:-8000}
REPEATS=${3:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/clipkit-embed-scale.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
"$CLIPKIT" init --arch clip-tiny --out "$WORK/model" > /dev/null
python3 - "$HERE/tests/data/datasets/coco-tiny" "$WORK" "$N" <<'EOF'
import io, json, os, sys, tarfile
root, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
caps = {}
for split in ("train", "val"):
    d = json.load(open(f"{root}/annotations/captions_{split}2017.json"))
    files = {im["id"]: f"{root}/{split}2017/{im['file_name']}" for im in d["images"]}
    for a in d["annotations"]:
        caps.setdefault(files[a["image_id"]], a["caption"])
src = sorted(caps)
os.makedirs(f"{work}/shards"); os.makedirs(f"{work}/images")
def add(t, name, data):
    info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
for s in range(0, n, 1000):
    with tarfile.open(f"{work}/shards/{s // 1000:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(s, min(n, s + 1000)):
            p = src[i % len(src)]
            key = f"{i:09d}"
            jpg = open(p, "rb").read()
            add(t, key + ".jpg", jpg)
            add(t, key + ".txt", caps[p].encode())
            add(t, key + ".json", json.dumps({"key": key, "caption": caps[p], "url": "file://" + p}).encode())
            os.link(p, f"{work}/images/{key}.jpg")
EOF
SHARDS="$WORK/shards/{00000..$(printf %05d $(( (N + 999) / 1000 - 1 )))}.tar"
run() {  # name, then the command; prints {"run", "seconds", "images_per_s"}
  local name=$1; shift
  rm -rf "$WORK/out"
  local t0=$(date +%s.%N)
  "$@" --out "$WORK/out" > /dev/null 2> "$WORK/log" || { cat "$WORK/log" >&2; exit 1; }
  local t1=$(date +%s.%N)
  python3 -c "import json; s=$t1-$t0; print(json.dumps({'run': '$name', 'images': $N, 'seconds': round(s, 3), 'images_per_s': round($N/s, 1)}))"
}
# one core per rank: the single-process baseline is pinned to one core too (its decode thread included)
MPI=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --bind-to core -np 2)
COMMON=(--model "$WORK/model" --batch-size 32 --shard-size 2000)
for ((r = 0; r < REPEATS; r++)); do
  run wds_1proc_1thread taskset -c 0 "$CLIPKIT" embed --data "$SHARDS" "${COMMON[@]}" --threads 1
  run wds_1proc_2threads "$CLIPKIT" embed --data "$SHARDS" "${COMMON[@]}" --threads 2
  run wds_mpirun_2ranks_1thread "${MPI[@]}" "$CLIPKIT" embed --data "$SHARDS" "${COMMON[@]}" --threads 1
  run folder_1proc_2threads "$CLIPKIT" embed --folder "$WORK/images" "${COMMON[@]}" --threads 2
done | tee "$WORK/runs.jsonl"
python3 - "$WORK/runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = {k: statistics.median(r["images_per_s"] for r in runs if r["run"] == k) for k in dict.fromkeys(r["run"] for r in runs)}
print(json.dumps({"median_images_per_s": med,
                  "scaling_efficiency_2_ranks": round(med["wds_mpirun_2ranks_1thread"] / (2 * med["wds_1proc_1thread"]), 3),
                  "2_ranks_vs_1_process_2_threads": round(med["wds_mpirun_2ranks_1thread"] / med["wds_1proc_2threads"], 3),
                  "webdataset_vs_folder_2_threads": round(med["wds_1proc_2threads"] / med["folder_1proc_2threads"], 3)}))
EOF
