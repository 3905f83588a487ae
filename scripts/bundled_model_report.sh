#!/usr/bin/env bash
# Renders the pictures and numbers of docs/bundled-model.md from the bundled model, with latentkit
# only: sample grids, the README preview, a truncation sweep, nearest training images and (given
# the training run's folder) a strip of the same seeds at several points of training.
# Usage: bundled_model_report.sh LATENTKIT MODEL DATASET.zip OUTDIR [RUNDIR]
set -euo pipefail
lk="$1"; model="$2"; data="$3"; out="$4"; run="${5:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

for psi in 1.0 0.7; do
  "$lk" generate -m "$model" --seeds 0-63 --grid 8x8 --trunc "$psi" --outdir "$tmp/psi$psi"
  mv "$tmp/psi$psi/grid.png" "$out/grid-psi$psi.png"
done
"$lk" generate -m "$model" --seeds 0-7 --trunc 0,0.25,0.5,0.7,0.85,1 --grid 6x8 --outdir "$tmp/sweep"
mv "$tmp/sweep/grid.png" "$out/truncation.png"
"$lk" nearest -m "$model" --data "$data" --seeds 0-63 --out "$out/nearest.png" --json "$out/nearest.json" | tee "$out/nearest.txt"
"$lk" morph -m "$model" --seeds 1-32 --grid 4x2 --kind cubic --loop --frames 12 --trunc 0.7 --fps 12 --out "$out/preview.gif"

if [ -n "$run" ]; then
  mkdir -p "$out/progress"
  last=$(ls "$run"/snapshot-*.safetensors | tail -n 1)
  for snap in "$run"/snapshot-*.safetensors; do
    kimg=$(basename "$snap" .safetensors | sed 's/snapshot-0*\([0-9]*\)/\1/')
    kimg=$((kimg / 1000))
    case $kimg in 20|40|80|160|*00) ;; *) [ "$snap" = "$last" ] || continue ;; esac
    "$lk" generate -m "$snap" --seeds 0-15 --grid 16x1 --trunc 1 --outdir "$tmp/k$kimg"
    mv "$tmp/k$kimg/grid.png" "$out/progress/kimg$(printf %04d "$kimg").png"
  done
fi
echo "bundled_model_report: wrote $out"
