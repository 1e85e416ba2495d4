#!/usr/bin/env bash
# scripts/check_install.sh [BUILD_DIR] -- clipkit as a user installs it (run by scripts/test.sh):
#   1. `cmake --install` into a fresh prefix; an application outside the tree (examples/installed)
#      builds against it with find_package(clipkit), and again with pkg-config, and runs;
#   2. the installed `clipkit` runs from there (--version; `init` finds its bundled assets);
#   3. the Debian package (cpack -G DEB): dpkg-deb --info/--contents, lintian, and `dpkg -i` into a
#      fresh Debian 12 root made with mmdebstrap (apt resolves its Depends from the mirror), where
#      `clipkit --version`, `clipkit index build` and `clipkit search` must run. Without mmdebstrap, root or network, step 3's
#      install is reported as skipped and the package checks still run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "check_install: $*"; }

# 1. install + an out-of-tree application (CMake package and pkg-config)
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(dirname "$(find "$work/prefix" -name 'libclipkit.so' | head -1)")
cmake -S examples/installed -B "$work/app" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/app" >/dev/null
"$work/app/clipkit_example" tests/data/models/tiny-clip tests/data/images/chelsea.jpg tests/data/images/rocket.jpg \
  > "$work/example.txt"
grep -q "^model .*tiny-clip: CLIPModel" "$work/example.txt"
grep -q "^image 1:" "$work/example.txt"
# one image alone vs the first of two: equal within fp32 rounding (AVX2's sgemm rounds a row by the
# batch it is in; AVX-512 machines give 0)
awk '/^embed_pixels vs embed_images: max abs diff/ { found = 1; if ($NF + 0 > 1e-6) bad = 1 }
     END { exit !(found && !bad) }' "$work/example.txt" ||
  { echo "check_install: embed_pixels and embed_images differ: $(grep 'max abs diff' "$work/example.txt")" >&2; exit 1; }
grep -q "^errors are clipkit::Error: /nonexistent/model" "$work/example.txt"
say "CMake package: examples/installed builds and runs ($(sed -n 2p "$work/example.txt"))"
PKG_CONFIG_PATH="$libdir/pkgconfig" c++ examples/installed/main.cpp \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs clipkit) -o "$work/app_pc"
LD_LIBRARY_PATH="$libdir" "$work/app_pc" tests/data/models/tiny-clip tests/data/images/chelsea.jpg > "$work/pc.txt"
grep -q "^image 0:" "$work/pc.txt"
say "pkg-config: $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --modversion clipkit), the same example builds and runs"

# 2. the installed binary
"$work/prefix/bin/clipkit" --version | grep -q "^clipkit "
"$work/prefix/bin/clipkit" init --arch clip-tiny --out "$work/init" >/dev/null
"$work/prefix/bin/clipkit" info --model "$work/init" --json | grep -q '"model_type":"clip"'
say "installed binary: $("$work/prefix/bin/clipkit" --version), init finds share/clipkit/assets"

# 3. the Debian package
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/clipkit_*.deb | head -1)
dpkg-deb --info "$deb" > "$work/info.txt"
grep -q "^ Package: clipkit" "$work/info.txt"
grep -q "^ Depends: .*libdnnl" "$work/info.txt"
dpkg-deb --contents "$deb" > "$work/contents.txt"
for f in ./usr/bin/clipkit ./usr/include/clipkit/clipkit.h ./usr/lib/cmake/clipkit/clipkitConfig.cmake \
         ./usr/lib/pkgconfig/clipkit.pc ./usr/share/clipkit/assets/tokenizers/clip/vocab.json; do
  grep -q " $f\$" "$work/contents.txt" || { echo "check_install: $deb lacks $f" >&2; exit 1; }
done
say "$(basename "$deb"): $(grep '^ Depends:' "$work/info.txt" | cut -c1-160)..."
if command -v lintian >/dev/null; then
  # Errors fail the check; the tags for what a CPack package lacks by design (no changelog,
  # copyright file or man page) are listed in scripts/lintian-overrides.txt.
  lintian --tag-display-limit 0 --suppress-tags-from-file scripts/lintian-overrides.txt "$deb" > "$work/lintian.txt" || true
  if grep -q "^E:" "$work/lintian.txt"; then cat "$work/lintian.txt" >&2; exit 1; fi
  say "lintian: no errors ($(grep -c '^W:' "$work/lintian.txt" || true) warnings)"
else
  say "lintian not installed: skipped"
fi
if [ "$(id -u)" -eq 0 ] && command -v mmdebstrap >/dev/null && [ "${CLIPKIT_SKIP_DEB_ROOT:-0}" != 1 ]; then
  root="$work/root"
  if mmdebstrap --quiet --variant=apt --include=ca-certificates bookworm "$root" >/dev/null 2>"$work/mmdebstrap.log"; then
    cp "$deb" "$root/tmp/clipkit.deb"
    mkdir -p "$root/tmp/data" && cp -r tests/data/models/tiny-clip tests/data/datasets/coco-tiny/val2017 "$root/tmp/data/"
    inroot() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh -c "$1"; }
    inroot 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/clipkit.deb' \
      >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
    inroot 'clipkit --version && clipkit index build --model /tmp/data/tiny-clip --folder /tmp/data/val2017 \
      --index /tmp/idx --json && clipkit search --index /tmp/idx --text "a red circle" -k 1 --json' > "$work/root.txt" 2>&1 ||
      { cat "$work/root.txt" >&2; exit 1; }
    grep -q '"count": *40' "$work/root.txt" && grep -q '"rank":1' "$work/root.txt"
    say "dpkg -i into a fresh Debian 12 root ($(grep -c '^Unpacking' "$work/apt.log" || true) packages from the mirror): $(head -1 "$work/root.txt"); index build and search run there"
  else
    say "a fresh root could not be made (mmdebstrap: $(tail -1 "$work/mmdebstrap.log")): dpkg -i skipped"
  fi
else
  say "dpkg -i into a fresh root skipped (needs root and mmdebstrap; CLIPKIT_SKIP_DEB_ROOT=1 skips it)"
fi
