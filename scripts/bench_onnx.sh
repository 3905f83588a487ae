#!/usr/bin/env bash
# ONNX Runtime (CPU) against latentkit on the same model, in one run: exports MODEL to ONNX, then times
# `latentkit bench generate` and scripts/bench_onnx.js with the same batch, iterations and threads.
#   bash scripts/bench_onnx.sh LATENTKIT MODEL [BATCH] [ITERS]
set -euo pipefail
cli=${1:?usage: bench_onnx.sh LATENTKIT MODEL [BATCH] [ITERS]}
model=${2:?usage: bench_onnx.sh LATENTKIT MODEL [BATCH] [ITERS]}
batch=${3:-1}
iters=${4:-20}
threads=$(nproc)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cli" -q export "$model" "$tmp/model.onnx"
lk=$("$cli" --threads "$threads" bench generate -m "$model" --batch "$batch" --iters "$iters" --warmup 3 2>&1 | sed -n 's/.*per image *\([0-9.]*\) ms.*/\1/p')
ort=$(node "$here/bench_onnx.js" "$tmp/model.onnx" --batch "$batch" --iters "$iters" --warmup 3 --threads "$threads" | sed -n 's/^per image *\([0-9.]*\) ms.*/\1/p')
awk -v m="$model" -v b="$batch" -v t="$threads" -v lk="$lk" -v ort="$ort" 'BEGIN {
  printf "%s  batch %s  threads %s: latentkit %.2f ms/image, ONNX Runtime %.2f ms/image, ONNX Runtime / latentkit time %.2f\n", m, b, t, lk, ort, ort / lk }'
