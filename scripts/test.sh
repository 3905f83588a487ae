#!/usr/bin/env bash
# Sets up a Debian 12 machine (packages), builds latentkit and runs the whole test suite through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 600
