#!/usr/bin/env bash
# Data-pipeline benchmark on the same files for tether and PyTorch: bench_data (tools/bench/
# bench_data.cpp) writes N synthetic 500x375 JPEGs to a temp dir with --keep and measures
# (a) decode, (b) decode + RandomResizedCrop 224 + flip + normalize on one thread and (c) the
# Loader with 1 and 2 workers; then tools/bench/bench_data_torch.py (PIL + torchvision,
# Debian's torch via /usr/bin/python3) measures the same on those files. Prints both, then
# removes the files. Builds nothing: build bench_data first (ninja -C build bench_data).
#
# Usage: tools/bench/run_data_bench.sh [N=600] [--build DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build"
n=600
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bench="$build/bench_data"
[ -x "$bench" ] || { echo "no $bench: build it first (ninja -C $build bench_data)" >&2; exit 1; }
torch_py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== tether (bench_data $n)"
"$bench" "$n" --keep "$tmp"
echo
echo "== torch (bench_data_torch.py, same files)"
if "$torch_py" -c "import torch, torchvision" 2>/dev/null; then
  "$torch_py" "$root/tools/bench/bench_data_torch.py" "$tmp"
else
  echo "(no torch/torchvision for $torch_py: tether times only)"
fi
