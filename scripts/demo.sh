#!/usr/bin/env bash
# Sets up, builds and runs latentkit's main job: a looping morph video (plus samples and a
# style-mixing grid) from the model shipped in the repository. Output goes to ./out, or the
# folder given as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
bash scripts/setup.sh
bash scripts/build.sh
lk=./build/tools/latentkit
model=tests/data/golden/tiny32.pkl
mkdir -p "$out"
$lk info "$model"
$lk morph --model "$model" --seeds 1,2,3,4,5 --kind cubic --loop --frames 24 --noise-loop --out "$out/morph.mp4"
$lk morph --model "$model" --seeds 1-16 --grid 4x2 --kind cubic --loop --frames 24 --out "$out/morph-grid.mp4"
rm -rf "$out/samples"
$lk generate --model "$model" --seeds 0-15 --trunc 0.7 --outdir "$out/samples"
$lk style-mix --model "$model" --rows 85,100,75 --cols 55,821,1789 --styles 0-3 --out "$out/style-mix.png"
echo
echo "demo: wrote"
echo "  $out/morph.mp4        looping morph through 5 seeds (120 frames)"
echo "  $out/morph-grid.mp4   4x2 grid of looping morphs"
echo "  $out/samples/         16 images"
echo "  $out/style-mix.png    style-mixing grid"
