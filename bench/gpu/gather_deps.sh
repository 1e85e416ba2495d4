#!/usr/bin/env bash
# bench/gpu/gather_deps.sh -- run HERE (a Debian 12 machine with apt): unpacks into .gpudeps/ (git-
# ignored) the small libraries the standalone GPU build needs, from Debian 12 packages, so that a
# bare GPU machine (C++ compiler, CMake, Ninja, the CUDA toolkit; no -dev packages, no network)
# builds clipkit with -DCLIPKIT_STANDALONE_GPU=ON (cmake/standalone_gpu.cmake finds them there):
#   header-only: nlohmann-json, CLI11; googletest's sources (built there)
#   headers + shared libraries: fmt, libjpeg-turbo, libpng + zlib, libwebp, giflib, utf8proc
# Documentation, man pages, static archives and googlemock are dropped. Prints the size; the travelling tree (repo
# without tests/data, plus .gpudeps) must stay within the device tool's 64 MiB.
#   usage: bench/gpu/gather_deps.sh [OUT_DIR]   (default .gpudeps in the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.gpudeps}
pkgs=(nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 googletest
      libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16 zlib1g-dev zlib1g
      libwebp-dev libwebp7 libgif-dev libgif7 libutf8proc-dev libutf8proc2)
tmp=$(mktemp -d)
chmod 755 "$tmp"  # apt's _apt user downloads into it
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}" >/dev/null) || {
  echo "gather_deps: apt-get download failed (run apt-get update first?)" >&2
  exit 1
}
rm -rf "$out"
mkdir -p "$out"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$out"; done
rm -rf "$out/usr/share/doc" "$out/usr/share/doc-base" "$out/usr/share/man" "$out/usr/share/lintian" \
  "$out/usr/src/googletest/googlemock"
find "$out" -name '*.a' -delete  # the build links the shared libraries
# absolute symlinks (e.g. /usr/lib/x86_64-linux-gnu/libz.so -> /lib/...) would point outside $out
find "$out" -type l | while read -r l; do
  t=$(readlink "$l")
  if [[ "$t" == /* ]]; then
    ln -sfn "$(realpath --relative-to="$(dirname "$l")" "$out$t")" "$l"
  fi
done
broken=$(find "$out" -xtype l | grep -v -E 'libwebp(demux|mux)|libsharpyuv' || true)
if [ -n "$broken" ]; then
  echo "gather_deps: dangling links in $out:" >&2
  echo "$broken" >&2
  exit 1
fi
printf 'gather_deps: %s holds %s (%s)\n' "$out" "$(du -sh "$out" | cut -f1)" "${pkgs[*]}"
