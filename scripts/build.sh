#!/usr/bin/env bash
# Configures and builds latentkit into build/ (Release, Ninja, ccache when present).
# Extra arguments go to the CMake configure step, e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build --parallel "$(nproc)"
