#!/usr/bin/env bash
# The README's main command (scripts/demo.sh) keeps its promise: every text search's top hit is an
# image whose caption says what was asked, zero-shot accuracy on unseen images is at least 0.9, and
# it ends by saying how to open the web page. Usage: demo_test.sh CLIPKIT_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
CLIPKIT_BIN=$1 CLIPKIT_DEMO_OUT="$out/demo" "$here/scripts/demo.sh" > "$out/log.txt" 2>&1 || { cat "$out/log.txt"; exit 1; }
cat "$out/log.txt"
fail() { echo "demo_test: $*" >&2; exit 1; }
for q in "a red circle on the left" "a blue square at the top" "a green triangle on the right"; do
  first=$(grep -A1 -F -- "-- \"$q\"" "$out/log.txt" | sed -n 2p)
  want=${q#a }
  [[ "$first" == *"$want"* ]] || fail "top hit for \"$q\" is: $first"
done
acc=$(sed -n 's/^accuracy \([0-9.]*\) .*/\1/p' "$out/log.txt")
[ -n "$acc" ] || fail "no accuracy line"
python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.9 else 1)" || fail "zero-shot accuracy $acc < 0.9"
grep -q "then open http://127.0.0.1:8080/?q=" "$out/log.txt" || fail "no web page instructions"
echo "demo_test: passed in $(( $(date +%s) - start )) s (zero-shot accuracy $acc)"
