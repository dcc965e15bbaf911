"""PyTorch side of `tether bench`: the same model, batch, input size and threads; training-step
and inference img/s (median of timed runs after warm-up) and peak RSS. Run with /usr/bin/python3.

usage: bench_torch.py --model resnet50 --batch 16 --size 224 --threads 2 [--iters 10] [--json]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--model", default="resnet50")
p.add_argument("--batch", type=int, default=16)
p.add_argument("--size", type=int, default=224)
p.add_argument("--num-classes", type=int, default=1000)
p.add_argument("--threads", type=int, default=0)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--mode", default="both", choices=["train", "infer", "both"])
p.add_argument("--json", action="store_true")
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
torch.manual_seed(0)
model = getattr(torchvision.models, a.model)(num_classes=a.num_classes)
x = torch.randn(a.batch, 3, a.size, a.size)
target = torch.randint(0, a.num_classes, (a.batch,))


def median_seconds(step):
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


result = {"model": a.model, "batch": a.batch, "size": a.size, "threads": torch.get_num_threads(),
          "iters": a.iters, "framework": "torch " + torch.__version__}
if a.mode in ("infer", "both"):
    model.eval()

    def infer():
        with torch.no_grad():
            model(x)

    result["infer_img_s"] = a.batch / median_seconds(infer)
    result["infer_peak_rss_mb"] = peak_rss_mb()
if a.mode in ("train", "both"):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def train():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()

    result["train_img_s"] = a.batch / median_seconds(train)
result["peak_rss_mb"] = peak_rss_mb()
if a.json:
    print(json.dumps(result))
else:
    print(f"{a.model} batch {a.batch} at {a.size}x{a.size}, {result['threads']} threads")
    for k in ("train_img_s", "infer_img_s", "peak_rss_mb"):
        if k in result:
            print(f"  {k}: {result[k]:.2f}")
