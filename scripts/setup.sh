#!/usr/bin/env bash
# Installs every Debian 12 package latentkit needs to build, test and run, then the JavaScript packages
# the tests use (package-lock.json, into node_modules/). Idempotent: what is installed is skipped. Run as
# root (or with sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  # core (ONNX: the ONNX library builds and checks exported graphs)
  libtorch-dev libeigen3-dev nlohmann-json3-dev libfmt-dev zlib1g-dev libonnx-dev
  # an optimised BLAS for LibTorch and Eigen (Debian otherwise links the slow reference BLAS)
  libopenblas0-pthread
  # I/O layer
  libopencv-dev libavcodec-dev libavformat-dev libswscale-dev libswresample-dev libavutil-dev
  # audio: analysis (onsets, beats, bands), OSC control and sound in the viewer
  libaubio-dev liblo-dev portaudio19-dev
  libdlib-dev libdlib-data opencv-data libblas-dev liblapack-dev libjpeg-dev libpng-dev libsqlite3-dev
  # models by URL
  libcurl4-openssl-dev
  # command line tool and tests; `latentkit serve` (cpp-httplib)
  libcli11-dev libspdlog-dev doctest-dev libcpp-httplib-dev
  # test data: real photos and videos, numpy to check written .npz files, PyTorch to read exported .pt
  opencv-doc python3-numpy python3-torch
  # ONNX Runtime (npm onnxruntime-node) runs exported .onnx files in the tests; the pages are tested in
  # headless Chromium (npm puppeteer-core drives the system browser; it downloads none)
  nodejs chromium
  # the bundled model's training images (scripts/emoji_images.py; unicode-data: which glyphs are faces)
  fonts-noto-color-emoji unicode-data
  # viewer
  libimgui-dev libglfw3-dev python3-glad
  # distributed training
  libgloo-dev
  # headless viewer tests and fuzzing
  xvfb xauth libgl1-mesa-dri clang libclang-rt-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# A Node.js from elsewhere (NodeSource) brings its own npm, which Debian's npm package conflicts with.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# JavaScript packages from the npm registry, exactly as package-lock.json pins them. --ignore-scripts:
# onnxruntime-node's CPU library ships inside its package; its install script would try to download
# GPU libraries from a host that cannot be reached.
cd "$(dirname "$0")/.."
if [ node_modules/.package-lock.json -nt package-lock.json ] &&
   node -e "for (const p of ['onnxruntime-node', 'onnxruntime-web', 'puppeteer-core']) require.resolve('./node_modules/' + p)" >/dev/null 2>&1; then
  echo "setup: node_modules is up to date"
else
  echo "setup: npm ci --ignore-scripts"
  npm ci --ignore-scripts --no-audit --no-fund
fi
