#!/usr/bin/env bash
# Builds and tests latentkit against Debian 13's LibTorch 2.6 in a chroot, to check the LibTorch 2.x
# API without a GPU. Run as root on Debian with debootstrap and access to deb.debian.org.
#   scripts/check_debian13.sh cpu  DIR   libtorch-dev (CPU): scripts/test.sh, the README's test command
#   scripts/check_debian13.sh cuda DIR   libtorch-cuda-dev and NCCL with the CUDA 12.4 toolkit (about 3 GB of
#                                        packages): build, then the tests on the CPU (CUDA tests skip)
# DIR is the chroot (created when missing, reused otherwise). The committed HEAD is cloned into it.
# Mesa 25's llvmpipe crashes creating a GL context in any process that loads Debian 13's LibTorch
# (seen with a bare GLFW program linked to libtorch_cpu), so the viewer tests use softpipe there.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}; root=${2:-}
if [[ "$mode" != cpu && "$mode" != cuda ]] || [ -z "$root" ]; then
  echo "usage: $0 cpu|cuda CHROOT_DIR" >&2; exit 2
fi
root=$(realpath -m "$root")

if [ ! -x "$root/bin/bash" ]; then
  debootstrap --variant=minbase --components=main,contrib,non-free,non-free-firmware trixie "$root" \
    http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$root/etc/"
mounted=()
cleanup() { for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[i]}" || true; done; }
trap cleanup EXIT
for d in proc sys dev dev/pts; do mount --bind "/$d" "$root/$d"; mounted+=("$root/$d"); done

rm -rf "$root/root/latentkit"
git clone -q . "$root/root/latentkit"
in_root() {
  chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive GALLIUM_DRIVER=softpipe /bin/bash -c "cd /root/latentkit && $1"
}

if [ "$mode" = cpu ]; then
  in_root "bash scripts/test.sh"
  exit 0
fi

# CUDA: setup.sh's packages with the CUDA builds of LibTorch and Gloo instead of the CPU ones.
# cuDNN is only a download script in Debian (it fetches from NVIDIA's site): an empty stand-in package
# satisfies the dependency, and a stand-in libcudnn.so.9 (every symbol LibTorch asks for, none usable)
# lets the programs load. Without a GPU, cuDNN is never called.
packages=$(sed -n '/^packages=(/,/^)/p' scripts/setup.sh | grep -v '^packages=(\|^)' | sed 's/#.*//' |
           tr '\n' ' ' | sed 's/\blibtorch-dev\b//; s/\blibgloo-dev\b/libgloo-cuda-dev/')
if ! chroot "$root" dpkg-query -W nvidia-cudnn >/dev/null 2>&1; then
  mkdir -p "$root/tmp/cudnn/DEBIAN"
  printf '%s\n' "Package: nvidia-cudnn" "Version: 9.0.0.312~cuda12" "Architecture: all" \
    "Maintainer: latentkit <latentkit@localhost>" "Description: empty stand-in for a compile check" \
    > "$root/tmp/cudnn/DEBIAN/control"
  in_root "dpkg-deb -b /tmp/cudnn /tmp/cudnn.deb >/dev/null && dpkg -i /tmp/cudnn.deb"
fi
in_root "apt-get update -q && apt-get install -y -q --no-install-recommends $packages \
         libtorch-cuda-dev libnccl-dev nvidia-cuda-toolkit nvidia-cuda-dev libcuda1"
if [ ! -e "$root/usr/local/lib/libcudnn.so.9" ]; then
  mkdir -p "$root/tmp/cudnn-lib"
  {
    echo '#include <stddef.h>'
    echo 'size_t cudnnGetVersion(void) { return 90000; }'
    echo 'size_t cudnnGetCudartVersion(void) { return 12040; }'
    echo 'const char* cudnnGetErrorString(int s) { (void)s; return "cuDNN is not installed (stand-in)"; }'
    chroot "$root" nm -D --undefined-only /usr/lib/x86_64-linux-gnu/libtorch_cuda.so | grep -o 'cudnn[A-Za-z0-9_]*' |
      sort -u | grep -v -x -E 'cudnnGetVersion|cudnnGetCudartVersion|cudnnGetErrorString' | sed 's/.*/int &(void) { return 1; }/'
  } > "$root/tmp/cudnn-lib/stub.c"
  echo 'libcudnn.so.9 { global: cudnn*; local: *; };' > "$root/tmp/cudnn-lib/stub.map"
  in_root "gcc -shared -fPIC -o /usr/local/lib/libcudnn.so.9 -Wl,-soname,libcudnn.so.9 \
           -Wl,--version-script=/tmp/cudnn-lib/stub.map /tmp/cudnn-lib/stub.c && ldconfig"
fi
in_root "bash scripts/build.sh && ctest --test-dir build --output-on-failure --timeout 600"
