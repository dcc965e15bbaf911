#!/usr/bin/env bash
# Runs tether's core benchmark (tools/bench/bench_core.cpp) and PyTorch's conv timings
# (tools/bench/bench_conv_torch.py, Debian's torch via /usr/bin/python3) at the same thread
# count and batch, and prints per conv shape: tether ms, torch ms and torch/tether (> 1 means
# tether is faster), both counting forward + backward for input and weight; then GEMM % of
# the measured peak.
#
# Usage: tools/bench/run_core_bench.sh [--threads N] [--batch N] [--quick] [--min] [--cpu-time] [--build DIR]
#   --min: compare the fastest runs instead of the medians (steadier on a shared machine)
#   --cpu-time: time both sides by process CPU time / threads (not counting time spent
#               descheduled while other jobs run; spin-waits still count)
# The shapes are run one at a time, tether then torch, so both see the same machine load.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build"
threads=2
batch=8
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --quick) extra+=(--quick); shift ;;
    --min) extra+=(--min); shift ;;
    --cpu-time) extra+=(--cpu-time); shift ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# Build if needed (configuring a Release build first when there is none).
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTETHER_CUDA=OFF >/dev/null
fi
ninja -C "$build" -j2 bench_core >/dev/null

export OMP_NUM_THREADS=$threads
bench="$build/bench_core"
torch_py=/usr/bin/python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== peak and GEMM (tether, $threads threads)"
"$bench" --threads "$threads" --no-conv "${extra[@]}" | tee "$out/gemm.txt" | grep -v -E '^(GEMM|PEAK) '

have_torch=1
if ! "$torch_py" -c "import torch" 2>/dev/null; then
  echo "(no torch for $torch_py: tether times only)"
  have_torch=0
fi

shapes=$(sed -n 's/^ *("\([A-Za-z0-9_]*\)", .*/\1/p' "$root/tools/bench/bench_conv_torch.py")
for s in $shapes; do
  "$bench" --threads "$threads" --batch "$batch" --no-gemm --no-peak --shape "$s" "${extra[@]}" | grep '^CONV ' >>"$out/tether.txt"
  if [ $have_torch = 1 ]; then
    "$torch_py" "$root/tools/bench/bench_conv_torch.py" --threads "$threads" --batch "$batch" --shape "$s" \
      "${extra[@]}" | grep '^TORCH ' >>"$out/torch.txt"
  fi
done

echo
echo "== conv2d forward + backward (data + weight), f32, batch $batch, $threads threads"
printf '  %-22s %9s %9s %9s %9s %9s %8s\n' shape fwd bwd_data bwd_w tether torch ratio
awk -v have_torch=$have_torch '
  FNR == NR { torch[$2] = $6; next }
  { name = $2; t = $8
    if (have_torch && (name in torch)) r = sprintf("%8.2fx", torch[name] / t); else r = "       -"
    tt = (name in torch) ? sprintf("%9.2f", torch[name]) : "        -"
    printf "  %-22s %9.2f %9.2f %9.2f %9.2f %s %s\n", name, $5, $6, $7, t, tt, r
    if (name in torch) { n++; logsum += log(torch[name] / t) } }
  END { if (n) printf "  geometric mean torch/tether over %d shapes: %.2fx\n", n, exp(logsum / n) }
' <( [ -f "$out/torch.txt" ] && cat "$out/torch.txt" || true ) "$out/tether.txt"

echo
echo "== GEMM % of the measured $threads-thread peak"
awk '/^PEAK / { printf "  peak: %.1f GFLOP/s on 1 thread, %.1f on %d\n", $3, $4, $2 }
     /^GEMM / { printf "  %-36s %8.1f GFLOP/s %6.1f%%\n", $2, $3, $4 }' "$out/gemm.txt"
