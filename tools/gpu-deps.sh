#!/usr/bin/env bash
# Run on the Debian development machine (not on the GPU machine): downloads the .deb files of
# tether's build dependencies and Fashion-MNIST into .gpu-debs/ (ignored by git, ~33 MB), for a GPU
# machine that has CUDA, cuDNN and PyTorch but no Debian packages and no network. Carry the
# folder along (the device tool's `carry: [".gpu-debs"]`); tools/gpu-check.sh unpacks it into
# build-gpu/deps (never into /) and points CMake and TETHER_FASHION_MNIST there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-debs
cd .gpu-debs
apt-get download libeigen3-dev libstb-dev doctest-dev nlohmann-json3-dev libcli11-dev zlib1g-dev dataset-fashion-mnist 2>&1 |
  grep -v "unsandboxed" || true
ls -la
