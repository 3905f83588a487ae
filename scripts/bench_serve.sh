#!/usr/bin/env bash
# Served frames per second of `latentkit serve` on MODEL (one and eight clients), next to
# `latentkit bench generate` on the same model and machine in the same run, and the exported page's
# ms per image in headless Chromium (WASM). Figures for docs/benchmarks.md.
#   scripts/bench_serve.sh [MODEL] [SECONDS]     (default: the bundled model, 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji64.safetensors}
seconds=${2:-10}
cli=build/tools/latentkit
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
$cli serve --model "$model" --port 0 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
url=$(grep -o "http://127.0.0.1:[0-9]*" "$work/serve.log" | head -1)
echo "model $model, $(nproc) CPUs, $(date -u +%Y-%m-%d)"
for c in 1 8; do node scripts/bench_serve.js "$url" "$c" "$seconds"; done
$cli bench generate --model "$model" --batch 1 --iters 50 --warmup 5 2>/dev/null | grep -i "ms/image\|images/s" || true
kill $server; wait $server 2>/dev/null || true
$cli export "$model" "$work/site" --format web 2>/dev/null
(cd "$work/site" && exec python3 -u -m http.server 0 --bind 127.0.0.1 >"$work/http.log" 2>&1) &
server=$!
for _ in $(seq 100); do grep -q "port" "$work/http.log" && break; sleep 0.1; done
port=$(grep -o "port [0-9]*" "$work/http.log" | head -1 | cut -d' ' -f2)
mkdir -p "$work/page"
node tests/tools/page_test.js "http://127.0.0.1:$port/?seed=1" "$work/page" seeds 10 >/dev/null
node -e "const r = require('$work/page/page.json'); console.log('exported page, first image: ' + r.status + '; then: ' + r.statuses.join(', '))"
