#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, builds tether with the CUDA back end and the
# tests, runs the whole CTest suite (the "cuda" suite then really runs, and the parity suites
# run their reference scripts with the local PyTorch), benchmarks one training step of
# resnet50, resnet18, vgg16 and efficientnet_b0 (batch 64, 224x224) in tether and in PyTorch,
# both on the GPU, and prints a Markdown table of img/s and peak GPU memory (also written to
# $OUT/gpu-bench.md when OUT is set, with the test log as $OUT/ctest.log); `demo` runs the
# demo on the GPU at 32 px (to compare with the CPU figures in the README) and at 224 px.
#
#   usage: tools/gpu-check.sh [STAGE...] [--iters N] [--batch N] [--tf32 conv|all|none]
#   stages: build, test, bench, demo, all (default: build test bench). Each stage fits one
#   10-minute command of the device tool; the build folder (build-gpu) is kept between them.
#
# On the lent GPU machine (no Debian packages, no network), from this repository:
#   here:  tools/gpu-deps.sh                       # .gpu-debs/: headers + Fashion-MNIST, ~33 MB
#   there: run(command="tools/gpu-check.sh build test", carry=[".gpu-debs"]), then "... bench demo"
#
# Environment:
#   TETHER_PYTHON     python with a CUDA PyTorch and torchvision (default: the first of
#                     /usr/bin/python3 and python3 that has them); the parity tests use it too.
#   TETHER_DEPS_DEBS  the folder of .deb files to unpack (default .gpu-debs) when the machine lacks
#                     tether's build dependencies and cannot reach a package mirror
#   CUDA_ARCH         CMAKE_CUDA_ARCHITECTURES (default: native, this machine's GPU only)
set -euo pipefail
cd "$(dirname "$0")/.."

stages=() iters=20 batch=64 tf32=conv
while [ $# -gt 0 ]; do
  case "$1" in
    build|test|bench|demo) stages+=("$1") ;;
    all) stages+=(build test bench demo) ;;
    --iters) iters=$2; shift ;;
    --batch) batch=$2; shift ;;
    --tf32) tf32=$2; shift ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ ${#stages[@]} -gt 0 ] || stages=(build test bench)
want() { [[ " ${stages[*]} " == *" $1 "* ]]; }
fail() { echo "gpu-check: $*" >&2; exit 1; }
stage_start=$SECONDS
took() { echo "== $1 took $((SECONDS - stage_start)) s"; stage_start=$SECONDS; }

# ---- the GPU ------------------------------------------------------------------------------------
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this is not a machine with an NVIDIA GPU and driver"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
[ "$gpus" -ge 1 ] || fail "nvidia-smi shows no GPU (nvidia-smi -L: '$(nvidia-smi -L 2>&1 | head -1)')"
echo "== GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"

# ---- PyTorch --------------------------------------------------------------------------------------
has_cuda_torch() { "$1" -c 'import torch, torchvision; assert torch.cuda.is_available()' >/dev/null 2>&1; }
if [ -z "${TETHER_PYTHON:-}" ]; then
  for p in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -n "$p" ] && has_cuda_torch "$p"; then TETHER_PYTHON=$p; break; fi
  done
fi
if [ -z "${TETHER_PYTHON:-}" ] || ! has_cuda_torch "$TETHER_PYTHON"; then
  fail "no python with a CUDA PyTorch and torchvision (tried /usr/bin/python3 and python3; set TETHER_PYTHON)"
fi
export TETHER_PYTHON
echo "== PyTorch: $("$TETHER_PYTHON" -c 'import torch; print(torch.__version__, "at", torch.__file__)')"

# ---- build dependencies ---------------------------------------------------------------------------
prefix_args=()
missing=()
for h in eigen3/Eigen/Core stb/stb_image.h doctest/doctest.h nlohmann/json.hpp CLI/CLI.hpp zlib.h; do
  [ -e "/usr/include/$h" ] || missing+=("$h")
done
TETHER_DEPS_DEBS=${TETHER_DEPS_DEBS:-.gpu-debs}
deps=$PWD/build-gpu/deps
if [ -d "$TETHER_DEPS_DEBS" ] && { [ ${#missing[@]} -gt 0 ] || [ ! -d /usr/share/datasets/fashion-mnist ]; }; then
  mkdir -p "$deps"
  for f in "$TETHER_DEPS_DEBS"/*.deb; do dpkg -x "$f" "$deps"; done  # unpacked, never installed into /
  echo "== dependencies unpacked from $TETHER_DEPS_DEBS into $deps"
fi
if [ -d "$deps/usr/share/datasets/fashion-mnist" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  export TETHER_FASHION_MNIST=$deps/usr/share/datasets/fashion-mnist
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ -d "$deps/usr/include" ]; then
    prefix_args=(-DCMAKE_PREFIX_PATH="$deps/usr")
    if [ ! -e /usr/include/zlib.h ]; then  # zlib's headers from the .deb, the library from the system (stable ABI)
      libz=$(ldconfig -p | awk '/libz\.so\.1 /{print $NF; exit}')
      [ -n "$libz" ] || fail "no libz.so.1 on this machine"
      prefix_args+=(-DZLIB_INCLUDE_DIR="$deps/usr/include" -DZLIB_LIBRARY="$libz")
    fi
  elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null && timeout 60 apt-get update -qq >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libeigen3-dev libstb-dev doctest-dev \
      nlohmann-json3-dev libcli11-dev zlib1g-dev >/dev/null
  else
    fail "missing build dependencies (${missing[*]}) and no package mirror: set TETHER_DEPS_DEBS (see the top of this script)"
  fi
fi

# ---- build ----------------------------------------------------------------------------------------
jobs=$(nproc)
status=0
if want build; then
  echo "== configure and build (CUDA, tests) in build-gpu"
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTETHER_CUDA=ON -DTETHER_TESTS=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-native}" "${prefix_args[@]}" >/dev/null
  cmake --build build-gpu -j "$jobs"
  ./build-gpu/tether info
  took build
fi
[ -x build-gpu/tether ] || fail "build-gpu/tether is missing: run the build stage first (tools/gpu-check.sh build)"

# ---- tests ------------------------------------------------------------------------------------------
if want test; then
  echo "== tests (ctest; the cuda suite runs on the GPU, parity scripts with $TETHER_PYTHON)"
  log=${OUT:+$OUT/ctest.log}
  log=${log:-build-gpu/ctest.log}
  ctest --test-dir build-gpu --output-on-failure -j "$(( jobs > 4 ? jobs / 4 : 1 ))" 2>&1 | tee "$log" || status=1
  # The cuda suite's own summary (skips would mean the GPU was not seen).
  ./build-gpu/tether_tests --test-suite=cuda --no-intro=true 2>&1 | grep -E 'skipped: no CUDA|test cases:' || true
  took test
fi

# ---- benchmarks ---------------------------------------------------------------------------------------
if want bench; then
  echo "== training step on the GPU: tether vs PyTorch (batch $batch, 224x224, --tf32 $tf32, median of $iters)"
  results=()
  for model in resnet50 resnet18 vgg16 efficientnet_b0; do
    common=(--model "$model" --batch "$batch" --size 224 --mode train --device cuda --tf32 "$tf32" --iters "$iters"
            --warmup 5 --json)
    # The last line: the JSON result, or the error that stopped the run.
    t=$(./build-gpu/tether bench "${common[@]}" 2>&1) || status=1
    p=$("$TETHER_PYTHON" tools/bench_torch.py "${common[@]}" 2>&1) || status=1
    results+=("$model" "$(tail -n 1 <<<"$t")" "$(tail -n 1 <<<"$p")")
  done
  "$TETHER_PYTHON" - "${OUT:-}" "${results[@]}" <<'PY'
import json, sys

out_dir, rest = sys.argv[1], sys.argv[2:]
def parse(text):
    try:
        return json.loads(text)
    except ValueError:
        return {"error": text}
def cell(v, fmt):
    return fmt.format(v) if isinstance(v, (int, float)) else "failed"
def ratio(a, b):
    return f"{a / b:.2f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"
lines = ["| model | tether img/s | torch img/s | ratio | tether peak MiB | torch peak MiB | ratio |",
         "|---|---|---|---|---|---|---|"]
errors = []
for i in range(0, len(rest), 3):
    model, t, p = rest[i], parse(rest[i + 1]), parse(rest[i + 2])
    for side, r in (("tether", t), ("torch", p)):
        if "error" in r:
            errors.append(f"{model} ({side}): {r['error']}")
    ti, pi = t.get("train_img_s"), p.get("train_img_s")
    tm, pm = t.get("train_peak_gpu_mib"), p.get("train_peak_gpu_mib")
    lines.append(f"| {model} | {cell(ti, '{:.1f}')} | {cell(pi, '{:.1f}')} | {ratio(ti, pi)} | "
                 f"{cell(tm, '{:.0f}')} | {cell(pm, '{:.0f}')} | {ratio(tm, pm)} |")
table = "\n".join(lines)
print(table)
for e in errors:
    print("failed:", e, file=sys.stderr)
if out_dir:
    with open(f"{out_dir}/gpu-bench.md", "w") as f:
        f.write(table + "\n")
PY
  took bench
fi

# ---- a real fine-tuning run on the GPU ---------------------------------------------------------------
if want demo; then
  # The README's CPU demo is at 32 px: the same settings on the GPU should land within seed noise.
  # Then the same task at 224 px (ImageNet resolution), which only a GPU runs in minutes.
  for size in 32 224; do
    echo "== demo on the GPU at ${size}x${size}"
    ./build-gpu/tether demo --device cuda --input-size "$size" --methods none,l2sp,mars-pgm,dtnh-l2sp,ptr --seeds 3 \
      --cache-dir build-gpu/demo-cache 2>&1 | tee ${OUT:+$OUT/demo-$size.txt} || status=1
  done
  took demo
fi
exit $status
