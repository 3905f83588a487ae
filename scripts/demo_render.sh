#!/usr/bin/env bash
# The demo's rendering step, on the bundled model: a looping morph video and a sample grid.
# Usage: demo_render.sh LATENTKIT OUTDIR   (CTest runs it too, as the test "demo")
set -euo pipefail
lk="$1"
out="$2"
mkdir -p "$out"
# No --model: every command below says that it uses the bundled emoji model.
"$lk" info
"$lk" morph --seeds 1-48 --grid 4x3 --kind cubic --loop --frames 30 --trunc 0.7 --size 256 --out "$out/morph.mp4"
"$lk" morph --seeds 7,21,3,42 --kind slerp --loop --frames 45 --trunc 0.7 --size 256 --out "$out/morph-slerp.mp4"
rm -rf "$out/samples"
"$lk" generate --seeds 0-63 --grid 8x8 --trunc 0.7 --outdir "$out/samples"
echo
echo "demo: wrote"
echo "  $out/morph.mp4          4x3 grid of looping morphs through 48 seeds (cubic curve in W, psi 0.7, 120 frames, 1024x768: cells resampled to 256 px)"
echo "  $out/morph-slerp.mp4    one looping morph, slerp in Z through seeds 7, 21, 3, 42 (180 frames, 256x256)"
echo "  $out/samples/grid.png   8x8 grid of samples, seeds 0-63 (psi 0.7)"
