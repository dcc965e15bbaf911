#!/usr/bin/python3
"""PyTorch/torchvision reference timings for the data pipeline of bench_data (tools/bench/bench_data.cpp).

Reads the JPEGs that `bench_data N --keep DIR` wrote (DIR/train/class0..3/*.jpg) and measures
the same three things with PIL + torchvision:
  (a) decode only: Image.open(p).convert('RGB') + .load(), one process, torch.set_num_threads(1)
  (b) decode + Compose([RandomResizedCrop(224), RandomHorizontalFlip(), ToTensor(),
      Normalize(imagenet mean/std)]), one process, torch.set_num_threads(1)
  (c) DataLoader(ImageFolder(DIR/train, that transform), batch_size=64, shuffle=True,
      num_workers=W) for W = 1 and 2: one full pass, timed after one warm-up pass (each pass
      starts its workers anew, as DataLoader does by default; workers run 1 torch thread)
and prints img/s and img/s per core (per worker for (c)) in bench_data's format.
Run with Debian's torch: /usr/bin/python3; tools/bench/run_data_bench.sh runs both benches.

Usage: tools/bench/bench_data_torch.py DIR
"""
import argparse
import os
import sys
import time

import PIL
import torch
import torchvision
from PIL import Image, features
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import ImageFolder

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def report(what, images, secs, cores):
    print(f"{what:<58s} {images / secs:8.1f} img/s  {images / secs / cores:8.1f} img/s/core  "
          f"({images} images, {secs:.2f} s)", flush=True)


def decode(path):
    img = Image.open(path).convert("RGB")
    img.load()
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the directory given to bench_data --keep (holds train/class*/)")
    args = ap.parse_args()
    train_dir = os.path.join(args.dir, "train")
    if not os.path.isdir(train_dir):
        sys.exit(f"bench_data_torch: no {train_dir} (write it with: bench_data N --keep {args.dir})")

    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    paths = [p for p, _ in ImageFolder(train_dir).samples]
    n = len(paths)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, PIL {PIL.__version__} "
          f"(libjpeg-turbo: {features.check_feature('libjpeg_turbo')}); {n} images in {train_dir}; "
          f"{os.cpu_count()} CPUs", flush=True)

    checksum = 0.0
    for p in paths[:10]:  # warm-up
        checksum += decode(p).getpixel((0, 0))[0]
    # (a) decode only
    t0 = time.perf_counter()
    for p in paths:
        checksum += decode(p).getpixel((0, 0))[0]
    report("(a) PIL decode, 1 process", n, time.perf_counter() - t0, 1)

    # (b) decode + RandomResizedCrop(224) + flip + ToTensor + Normalize
    torch.manual_seed(0)
    t0 = time.perf_counter()
    for p in paths:
        checksum += float(transform(decode(p))[0, 0, 0])
    report("(b) decode + RRC 224 + flip + ToTensor + Normalize, 1 proc", n, time.perf_counter() - t0, 1)

    # (c) the DataLoader
    dataset = ImageFolder(train_dir, transform)
    for workers in (1, 2):
        loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers)
        for x, _ in loader:  # warm-up pass
            checksum += float(x[0, 0, 0, 0])
        t0 = time.perf_counter()
        images = 0
        for x, _ in loader:
            images += x.shape[0]
        report(f"(c) DataLoader, batch 64, RRC pipeline, workers={workers}", images, time.perf_counter() - t0,
               workers)

    print(f"(checksum {checksum:.3f})")


if __name__ == "__main__":
    main()
