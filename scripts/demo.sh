#!/usr/bin/env bash
# Sets up, builds and runs latentkit's main job on the model shipped in the repository.
# Output goes to ./out (or the folder given as the first argument).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
bash scripts/setup.sh
bash scripts/build.sh
model=tests/data/golden/tiny32.pkl
./build/tools/latentkit info "$model"
./build/tools/latentkit generate --model "$model" --seeds 0-15 --trunc 0.7 --outdir "$out/samples"
echo "demo: images written to $out/samples/"
ls "$out/samples"
