#!/usr/bin/env bash
# The measurements of docs/benchmarks.md on a GPU machine, after scripts/device_build.sh: the core
# tests first (they include the CUDA golden and fp16 checks), then each benchmark. Every command's
# output goes to OUT_DIR/NAME.txt and a short summary to OUT_DIR/summary.txt; a failing command is
# recorded and the rest still run.
# Usage: bash scripts/device_bench.sh [OUT_DIR]   (default $OUT, else bench-out)
# BUILD (default build-device), DEVICE (default cuda), LIMIT (seconds per command, default 300);
# QUICK=1 shrinks every size, for a dry run on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-device}
out=${1:-${OUT:-bench-out}}
device=${DEVICE:-cuda}
lk=$build/tools/latentkit
[ -x "$lk" ] || { echo "device_bench: $lk is missing: run scripts/device_build.sh first" >&2; exit 1; }
mkdir -p "$out"
: > "$out/summary.txt"

run() {
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$out/summary.txt"
  local t0
  t0=$(date +%s)
  timeout "${LIMIT:-300}" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  tail -n 6 "$out/$name.txt" | tee -a "$out/summary.txt"
  echo "rc=$rc after $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "nvidia-smi: not available"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo "python torch: not available"
  nproc
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

if [ "${QUICK:-0}" = 1 ]; then
  small=32 large=64 train_args=(--res 16 --cfg auto --batch 4 --iters 1 --warmup 1) iters=(--iters 2 --warmup 1) frames=(--frames 16)
else
  small=256 large=1024 train_args=(--res 256 --cfg paper256 --iters 20 --warmup 5) iters=() frames=()
fi

run ctest ctest --test-dir "$build" -j "$(nproc)" --output-on-failure
run generate-$small-b1 "$lk" bench generate --random $small --batch 1 "${iters[@]}" --device "$device"
run generate-$small-b8 "$lk" bench generate --random $small --batch 8 "${iters[@]}" --device "$device"
run generate-$large-b1 "$lk" bench generate --random $large --batch 1 "${iters[@]}" --device "$device"
run generate-sg3t-$small-b1 "$lk" bench generate --random $small --arch stylegan3-t --batch 1 "${iters[@]}" --device "$device"
run generate-sg3r-$small-b1 "$lk" bench generate --random $small --arch stylegan3-r --batch 1 "${iters[@]}" --device "$device"
run morph-$small "$lk" bench morph --random $small "${frames[@]}" --device "$device"
run project-$small "$lk" bench project --random $small --device "$device"
run project-$large "$lk" bench project --random $large --device "$device"
run directions-$small "$lk" bench directions --random $small --device "$device"
run train "$lk" bench train "${train_args[@]}" --device "$device"
echo "device_bench: outputs in $out"
