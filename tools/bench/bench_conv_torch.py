#!/usr/bin/python3
"""PyTorch reference timings for the conv shapes of bench_core (tools/bench/bench_core.cpp).

For each shape: torch.nn.functional.conv2d forward, and forward + backward for both the
input and the weight (no bias), f32, NCHW, at the same thread count and batch as bench_core.
Median of repeated runs after a warm-up. Run with Debian's torch: /usr/bin/python3.

Prints a table, and one line per shape for tools/bench/run_core_bench.sh:
  TORCH <name> <batch> <threads> <fwd_ms> <fwd+bwd_ms>
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

# name, C, O, k, stride, pad, H, groups -- keep in sync with kConvCases in bench_core.cpp
SHAPES = [
    ("conv1_7x7s2_3_64_224", 3, 64, 7, 2, 3, 224, 1),
    ("1x1_256_64_56", 256, 64, 1, 1, 0, 56, 1),
    ("3x3_64_64_56", 64, 64, 3, 1, 1, 56, 1),
    ("3x3s2_128_128_56", 128, 128, 3, 2, 1, 56, 1),
    ("1x1_1024_256_14", 1024, 256, 1, 1, 0, 14, 1),
    ("3x3_512_512_7", 512, 512, 3, 1, 1, 7, 1),
    ("1x1_64_256_56", 64, 256, 1, 1, 0, 56, 1),
    ("1x1s2_512_1024_28", 512, 1024, 1, 2, 0, 28, 1),
    ("3x3_256_256_14", 256, 256, 3, 1, 1, 14, 1),
    ("3x3g32_256_256_28", 256, 256, 3, 1, 1, 28, 32),
    ("dw3x3_128_56", 128, 128, 3, 1, 1, 56, 128),
]


CLOCK = time.perf_counter
USE_MIN = False


def median_ms(fn, min_reps, budget_s):
    """Median (or fastest, with --min) ms per call after a warm-up. With --cpu-time a sample
    runs fn enough times to last ~0.1 s (CPU time is accounted in scheduler ticks)."""
    t0 = time.perf_counter()
    fn()
    inner = 1
    if CLOCK is not time.perf_counter:
        inner = int(min(1000, max(1, 0.1 / max(time.perf_counter() - t0, 1e-6))))
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < 200):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        times.append((CLOCK() - t0) / inner)
    return 1e3 * (min(times) if USE_MIN else statistics.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shape", default="", help="only this shape")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by process CPU time / threads (steadier on a shared machine)")
    ap.add_argument("--min", action="store_true", help="report the fastest run instead of the median")
    args = ap.parse_args()
    global USE_MIN
    USE_MIN = args.min
    if args.cpu_time:
        global CLOCK  # noqa: PLW0603
        CLOCK = lambda: time.process_time() / args.threads  # noqa: E731
    torch.set_num_threads(args.threads)
    budget, reps = (0.3, 3) if args.quick else (1.0, 5)
    gen = torch.Generator().manual_seed(0)

    print(f"== torch {torch.__version__} conv2d f32, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"mkldnn={torch.backends.mkldnn.is_available()}")
    print(f"  {'shape':22s} {'fwd':>9s} {'fwd+bwd':>9s}")
    for name, c, o, k, s, p, h, g in SHAPES:
        if args.shape and args.shape != name:
            continue
        x = torch.randn(args.batch, c, h, h, generator=gen, requires_grad=True)
        w = torch.randn(o, c // g, k, k, generator=gen, requires_grad=True)
        with torch.no_grad():
            gy = torch.randn_like(F.conv2d(x, w, stride=s, padding=p, groups=g))

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, stride=s, padding=p, groups=g)

        def fwd_bwd():
            x.grad = None
            w.grad = None
            F.conv2d(x, w, stride=s, padding=p, groups=g).backward(gy)

        tf = median_ms(fwd, reps, budget)
        tt = median_ms(fwd_bwd, reps, budget)
        print(f"  {name:22s} {tf:9.3f} {tt:9.3f}")
        print(f"TORCH {name} {args.batch} {args.threads} {tf:.4f} {tt:.4f}", flush=True)


if __name__ == "__main__":
    main()
