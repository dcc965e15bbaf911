#!/usr/bin/env bash
# The README's demo command: installs dependencies, builds, and runs `tether demo`
# (pretrain on Fashion-MNIST classes 0-4, fine-tune on 5-9 with several methods, compare).
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tether_cli
./build/tether demo "$@"
