#!/usr/bin/env bash
# Installs the peers that bench/compare_embed.sh compares clipkit with. Bench-only: clipkit itself
# needs none of this.
#   - Debian python3-torch (1.13, for /usr/bin/python3), python3-numpy, and python3-pil / python3-regex
#     for the Pillow and Python-BPE peers of bench/image_peer.py and bench/tokenize_peer.py
#   - python3-onnx: quantize_onnx.py's dynamically quantized (int8) export for ONNX Runtime
#   - libopenblas0-pthread: Debian's torch does fp32 matmuls through libblas.so.3; without OpenBLAS
#     that is the reference BLAS (~3 GFLOP/s), which would make PyTorch fp32 a straw man
#   - npm onnxruntime-node into bench/peers/node_modules (--ignore-scripts: its CPU library ships
#     inside the package; the install script would only fetch CUDA parts)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DEBIAN_FRONTEND=noninteractive
sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends python3-torch python3-numpy python3-pil python3-regex python3-onnx libopenblas0-pthread
command -v node >/dev/null || $sudo apt-get install -y -q --no-install-recommends nodejs
command -v npm >/dev/null || $sudo apt-get install -y -q --no-install-recommends npm
npm ci --ignore-scripts --no-audit --no-fund
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
node -e 'console.log("onnxruntime-node", require("onnxruntime-node/package.json").version)'
