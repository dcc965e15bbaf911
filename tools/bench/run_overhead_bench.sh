#!/usr/bin/env bash
# Regularizer overhead (issues 6 and 7): the training step of each method relative to `--reg none`,
# from tools/bench/bench_overhead.cpp (round-robin, medians); prints the README's Markdown table.
#   usage: tools/bench/run_overhead_bench.sh [THREADS] [ITERS] [MODEL] [BATCH]   (default: all cores, 10, resnet50, 16)
# Run it on a quiet machine: the targets are a few percent, below a shared machine's noise.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-0}
iters=${2:-10}
model=${3:-resnet50}
batch=${4:-16}
[ -x build/bench_overhead ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build --target bench_overhead; }
out=$(./build/bench_overhead --model "$model" --batch "$batch" --size 224 --threads "$threads" --iters "$iters")
echo "$out" > build/overhead_raw.txt  # the raw lines, kept
echo "$out" | grep '^#' | sed 's/^# /Setup: /'
echo
echo "| method | step ms (median) | vs none | penalty + projection ms (median) | target |"
echo "|---|---|---|---|---|"
echo "$out" | awk '$1 == "OVERHEAD" {
  t = "<= 1.05x";
  if ($2 == "none" || $2 == "l2" || $2 == "fnp") t = "";
  if ($2 == "l2sp" || $2 == "l2sp-fisher") t = "<= 1.03x";
  if ($2 == "kd" || $2 == "delta") t = "<= 1.45x";
  if ($2 == "dtnh-l2sp" || $2 == "ptr") t = "<= 1.10x";
  printf "| %s | %.1f | %.3fx | %.2f | %s |\n", $2, $3, $4, $5, t }'
