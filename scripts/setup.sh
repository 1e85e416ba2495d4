#!/usr/bin/env bash
# Installs every Debian package listed in deps/debian-packages.txt that is missing, and the npm
# packages the tests run (tests/openai_client).
set -euo pipefail
cd "$(dirname "$0")/.."
# A line is "package" or "package cmd=NAME": the latter counts as present when the command NAME is
# on PATH (e.g. npm, which a NodeSource nodejs bundles and Debian's npm package would conflict with).
missing=()
while read -r p extra; do
  [ -z "$p" ] && continue
  case "$p" in \#*) continue ;; esac
  if [[ "$extra" == cmd=* ]] && command -v "${extra#cmd=}" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done < deps/debian-packages.txt
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The official OpenAI Node client that tests POST /v1/embeddings (tests/openai_client), pinned by its
# package-lock.json; git-ignored node_modules beside it.
if [ ! -f tests/openai_client/node_modules/openai/package.json ]; then
  (cd tests/openai_client && npm ci --ignore-scripts --no-audit --no-fund --silent)
fi
