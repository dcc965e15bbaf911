"""PyTorch reference for the diagonal Fisher of SPEC 4 (tests/regularizers/test_fisher.cpp).

usage: ref_fisher.py OUT

A seeded torchvision resnet18 with a 3-class head (BN running statistics randomised, so eval
mode matters), N = 4 seeded inputs 3x32x32 and labels. Writes the weights as `w.<name>`,
`input` [4,3,32,32], `target` [4] (i64), and for every parameter
  exact.<name>     = (1/N) sum_i sum_k p_k(x_i) (d log p_k(x_i) / dw)^2
  empirical.<name> = (1/N) sum_i (d log p_{y_i}(x_i) / dw)^2
computed in float64 (the truth) with one torch.autograd.grad per sample and class, in eval mode.
"""
import sys

import torch

from seeded_model import seeded_model
from st import save

out_path = sys.argv[1]
num_classes, n = 3, 4
model = seeded_model("resnet18", num_classes, seed=5)
out = {f"w.{k}": v.clone() for k, v in model.state_dict().items()}
gen = torch.Generator().manual_seed(11)
x = torch.randn(n, 3, 32, 32, generator=gen)
target = torch.randint(0, num_classes, (n,), generator=gen)
out["input"], out["target"] = x, target

model = model.double().eval()
names = [name for name, _ in model.named_parameters()]
params = [p for _, p in model.named_parameters()]
exact = [torch.zeros_like(p) for p in params]
empirical = [torch.zeros_like(p) for p in params]
for i in range(n):
    logp = torch.log_softmax(model(x[i:i + 1].double()), dim=1)[0]
    p = logp.exp().detach()
    for k in range(num_classes):
        grads = torch.autograd.grad(logp[k], params, retain_graph=True)
        for acc, g in zip(exact, grads):
            acc += p[k] * g * g
        if k == int(target[i]):
            for acc, g in zip(empirical, grads):
                acc += g * g
for name, e, m in zip(names, exact, empirical):
    out[f"exact.{name}"] = (e / n).float()
    out[f"empirical.{name}"] = (m / n).float()
save(out_path, out)
