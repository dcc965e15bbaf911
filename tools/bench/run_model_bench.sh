#!/usr/bin/env bash
# Side-by-side model benchmark: `tether bench` and tools/bench_torch.py on the same model,
# batch, input size and thread count; prints a Markdown table (the README's) with ratios.
#   usage: tools/bench/run_model_bench.sh [THREADS] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
iters=${2:-5}
[ -x build/tether ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build --target tether_cli; }
configs=("resnet18 16" "resnet50 16" "vgg16 8" "efficientnet_b0 8")
echo "| model | batch | train img/s tether | train img/s torch | ratio | infer img/s tether | infer img/s torch | ratio | peak RSS MB tether | peak RSS MB torch | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
  set -- $c
  t=$(./build/tether bench --model "$1" --batch "$2" --size 224 --threads "$threads" --iters "$iters" --json)
  p=$(OMP_NUM_THREADS=$threads /usr/bin/python3 tools/bench_torch.py --model "$1" --batch "$2" --size 224 --threads "$threads" --iters "$iters" --json)
  /usr/bin/python3 - "$t" "$p" <<'PY'
import json, sys
t, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
f = lambda k: f"{t[k]:.2f} | {p[k]:.2f} | {t[k] / p[k]:.2f}x"
print(f"| {t['model']} | {t['batch']} | {f('train_img_s')} | {f('infer_img_s')} | {t['peak_rss_mb']:.0f} | {p['peak_rss_mb']:.0f} | {t['peak_rss_mb'] / p['peak_rss_mb']:.2f}x |")
PY
done
