#!/usr/bin/env bash
# Builds the core and the latentkit command on a machine without Debian's packages: against the
# LibTorch of Python's torch (CUDA when it has it) and the header-only kit in .deps/ that
# scripts/device_kit.sh packs. No OpenCV, dlib or libav there, so the command reads PNG images
# only and writes videos as PNG folders. Of the tests only the core ones are built (golden networks,
# pickles, ops, also on CUDA when there is one): `ctest --test-dir BUILD_DIR` runs them. The viewer and
# the examples are not built.
# Usage: bash scripts/device_build.sh [BUILD_DIR] [extra CMake arguments]   (default build-device)
# TORCH_PREFIX overrides the LibTorch CMake folder.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-device}
shift || true
kit=$PWD/.deps
[ -d "$kit/lib/cmake" ] || { echo "device_build: $kit is missing: run scripts/device_kit.sh on Debian and carry .deps" >&2; exit 1; }

torch_prefix=${TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}
zlib=""
for candidate in $(ldconfig -p 2>/dev/null | awk '/libz\.so\.1 .*x86-64/ {print $NF}') \
                 /lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libz.so.1 /usr/lib64/libz.so.1 /lib64/libz.so.1; do
  if [ -e "$candidate" ]; then zlib=$candidate; break; fi
done
[ -n "$zlib" ] || { echo "device_build: no libz.so.1 on this machine" >&2; exit 1; }

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$kit;$torch_prefix" \
  -DZLIB_INCLUDE_DIR="$kit/include" -DZLIB_LIBRARY="$zlib" \
  -DLATENTKIT_BUILD_VIEWER=OFF -DLATENTKIT_BUILD_EXAMPLES=OFF "$@"
cmake --build "$build" --parallel "$(nproc)"
echo "device_build: $build/tools/latentkit"
