#!/usr/bin/env bash
# npm run gpu-check [-- options]: the one-command GPU check of issue 15 (README "npm run gpu-check").
# Checks that node and the built dist/ are here, then runs dist/gpu-check/cli.js, which drives the
# gpucolo CLI and writes gpu-check/summary.json. Exit codes: those of dist/gpu-check/cli.js
# (0 ok, 1 an expectation failed, 2 cannot run, 3 --strict and something not judged, 130 Ctrl-C).
#
# GPUCOLO_NODE=/path/to/node runs it with a node binary carried to a host without Node.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${GPUCOLO_NODE:-node}"

if ! command -v "$node" >/dev/null 2>&1; then
  echo "gpu-check: no node (looked for '$node'): install Node >= 20.17, or carry a node binary and set GPUCOLO_NODE=/path/to/node" >&2
  exit 2
fi
if ! "$node" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)'; then
  echo "gpu-check: $("$node" --version) is too old: gpucolo needs Node >= 20.17 (GPUCOLO_NODE=/path/to/node picks another)" >&2
  exit 2
fi
for f in dist/gpu-check/cli.js dist/cli/cli.js; do
  if [ ! -f "$root/$f" ]; then
    echo "gpu-check: $root/$f is missing: run npm ci (its prepare step builds dist/) or npm run build:ts" >&2
    exit 2
  fi
done
if [ ! -d "$root/node_modules/commander" ]; then
  echo "gpu-check: $root/node_modules is missing or incomplete: run npm ci, or carry node_modules with the tree" >&2
  exit 2
fi
exec "$node" "$root/dist/gpu-check/cli.js" "$@"
