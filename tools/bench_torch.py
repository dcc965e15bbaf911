"""PyTorch side of `tether bench`: the same model, batch, input size and threads; training-step
and inference img/s (median of timed runs after warm-up) and peak RSS. Run with /usr/bin/python3
(or, on a GPU machine, the python3 that holds a CUDA PyTorch).

usage: bench_torch.py --model resnet50 --batch 16 --size 224 --threads 2 [--iters 10] [--json]
                      [--device cpu|cuda[:N]] [--tf32 conv|all|none]

With --device cuda: cudnn.benchmark on, TF32 as tether's --tf32 (conv: PyTorch's defaults,
TF32 convolutions and strict float32 matrix products), each run synchronised before the timer
stops, and the peak GPU memory of the timed runs (max_memory_allocated, reset after warm-up).
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
p.add_argument("--device", default="cpu")
p.add_argument("--tf32", default="conv", choices=["conv", "all", "none"])
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
device = torch.device(a.device)
cuda = device.type == "cuda"
if cuda:
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = a.tf32 in ("conv", "all")
    torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "all"
torch.manual_seed(0)
model = getattr(torchvision.models, a.model)(num_classes=a.num_classes).to(device)
x = torch.randn(a.batch, 3, a.size, a.size).to(device)
target = torch.randint(0, a.num_classes, (a.batch,)).to(device)


def median_seconds(step):
    def run():
        step()
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(a.warmup):
        run()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(a.iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gpu_mib():
    return torch.cuda.max_memory_allocated(device) / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


result = {"model": a.model, "batch": a.batch, "size": a.size, "threads": torch.get_num_threads(),
          "iters": a.iters, "framework": "torch " + torch.__version__, "device": str(device)}
if cuda:
    result["tf32"] = a.tf32
if a.mode in ("infer", "both"):
    model.eval()

    def infer():
        with torch.no_grad():
            model(x)

    result["infer_img_s"] = a.batch / median_seconds(infer)
    result["infer_peak_rss_mb"] = peak_rss_mb()
    if cuda:
        result["infer_peak_gpu_mib"] = peak_gpu_mib()
if a.mode in ("train", "both"):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def train():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()

    result["train_img_s"] = a.batch / median_seconds(train)
    if cuda:
        result["train_peak_gpu_mib"] = peak_gpu_mib()
        result["train_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
result["peak_rss_mb"] = peak_rss_mb()
if a.json:
    print(json.dumps(result))
else:
    print(f"{a.model} batch {a.batch} at {a.size}x{a.size} on {device}, {result['threads']} threads")
    for k in ("train_img_s", "infer_img_s", "train_peak_gpu_mib", "infer_peak_gpu_mib", "peak_rss_mb"):
        if k in result:
            print(f"  {k}: {result[k]:.2f}")
