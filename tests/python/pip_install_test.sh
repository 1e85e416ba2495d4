#!/usr/bin/env bash
# `pip install .` into a fresh virtual environment with no package index (--no-index: nothing may be
# downloaded), reusing the build folder BUILD (CLIPKIT_BUILD_DIR: the module is already built there),
# then imports the installed package outside the source tree and embeds a text.
# usage: pip_install_test.sh SOURCE_ROOT BUILD [PYTHON]
set -euo pipefail
src=$1 build=$2 python=${3:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m venv --system-site-packages "$work/venv"
CLIPKIT_BUILD_DIR=$build "$work/venv/bin/pip" install --no-index --no-cache-dir --disable-pip-version-check "$src"
cd "$work"
"$work/venv/bin/python" - "$src" <<'PY'
import sys, os
import clipkit
assert clipkit.__file__.startswith(sys.prefix), clipkit.__file__  # the installed copy, not the tree's
m = clipkit.load(os.path.join(sys.argv[1], "tests/data/models/tiny-clip"))
x = m.embed_texts(["a photo of a cat"])
assert x.shape == (1, m.embed_dim), x.shape
print("pip install .: clipkit", clipkit.__version__, "from", clipkit.__file__)
PY
"$work/venv/bin/pip" uninstall -y clipkit >/dev/null
