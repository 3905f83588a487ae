#!/usr/bin/env bash
# Sets up, builds and runs latentkit's main job: looping morph videos and a sample grid from the
# emoji model shipped in the repository (models/emoji64.safetensors). Output goes to ./out, or
# the folder given as the first argument.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/demo_render.sh ./build/tools/latentkit "$out"
