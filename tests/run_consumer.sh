#!/usr/bin/env bash
# Installs the build into a fresh temporary prefix, builds tests/consumer against it with
# find_package(latentkit CONFIG), and a second program with pkg-config only, then runs both.
# Usage: run_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
test -f "$prefix/lib/cmake/latentkit/latentkitConfig.cmake"
test -f "$prefix/include/latentkit/networks.h"
test -f "$prefix/include/latentkit/io/config.h"
test -f "$prefix/share/latentkit/models/emoji64.safetensors"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$src/tests/consumer" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/consumer" "$prefix/share/latentkit/models/emoji64.safetensors" "$work/seed7.png" 7
test -s "$work/seed7.png"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
c++ -std=c++17 -O1 "$src/tests/consumer/pkgconfig_main.cpp" -o "$work/pkgconfig_consumer" $(pkg-config --cflags --libs latentkit)
"$work/pkgconfig_consumer" "$work/seed7.png" "$work/seed7.npz"
test -s "$work/seed7.npz"
echo "consumer: find_package and pkg-config builds against $prefix work"
