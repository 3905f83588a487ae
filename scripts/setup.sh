#!/usr/bin/env bash
# Installs every Debian 12 package latentkit needs to build, test and run.
# Idempotent: packages already installed are skipped. Run as root (or with sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  # core
  libtorch-dev libeigen3-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  # an optimised BLAS for LibTorch and Eigen (Debian otherwise links the slow reference BLAS)
  libopenblas0-pthread
  # I/O layer
  libopencv-dev libavcodec-dev libavformat-dev libswscale-dev libavutil-dev
  libdlib-dev libdlib-data opencv-data libblas-dev liblapack-dev libjpeg-dev libpng-dev libsqlite3-dev
  # models by URL
  libcurl4-openssl-dev
  # command line tool and tests
  libcli11-dev libspdlog-dev doctest-dev
  # test data: real photos and videos, and numpy to check written .npz files
  opencv-doc python3-numpy
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

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
