#!/usr/bin/env bash
# The README's test command: installs what the build and tests need (Debian packages, as
# root), configures, builds, runs every test, then the core, data and optim suites again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#   TETHER_SKIP_SANITIZE=1  skips the sanitizer stage (local quick runs)
set -euo pipefail
cd "$(dirname "$0")/.."

./tools/install_deps.sh

jobs=$(nproc)
echo "== build (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${TETHER_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== core, data, optim and regularizer tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHER_SANITIZE=ON -DTETHER_CUDA=OFF >/dev/null
  cmake --build build-asan -j "$jobs" --target tether_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=2 \
    ./build-asan/tether_tests --test-suite=core,autograd,gradcheck,ops,data,optim,regularizers --no-intro=true
fi
