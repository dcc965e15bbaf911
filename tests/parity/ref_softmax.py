"""PyTorch reference for softmax, log_softmax and cross_entropy: values and gradients (f32).

Writes, per case NAME: NAME.in0 (the input), NAME.v (the output gradient), NAME.out and
NAME.grad0. Cross-entropy cases also share ce.target (i64).
"""
import sys

import torch
import torch.nn.functional as F

from st import save

torch.manual_seed(0)
out = {}


def case(name, fn, x):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    v = torch.randn_like(y)
    (y * v).sum().backward()
    out[f"{name}.in0"] = x.detach()
    out[f"{name}.grad0"] = x.grad
    out[f"{name}.v"] = v
    out[f"{name}.out"] = y.detach()


x = torch.randn(4, 5, 6) * 3
for dim in (0, 1, 2):
    case(f"softmax_{dim}", lambda t, d=dim: torch.softmax(t, d), x)
    case(f"log_softmax_{dim}", lambda t, d=dim: torch.log_softmax(t, d), x)
# Huge logits (stability): differences of O(1) on top of +-1e4.
big = torch.randn(3, 7) + torch.tensor([[1e4], [-1e4], [0.0]])
case("softmax_big", lambda t: torch.softmax(t, 1), big)
case("log_softmax_big", lambda t: torch.log_softmax(t, 1), big)

logits = torch.randn(8, 10) * 2
target = torch.randint(0, 10, (8,))
out["ce.target"] = target
for s in (0.0, 0.1, 0.3):
    for red in ("none", "mean", "sum"):
        name = f"ce_{red}_{s}"
        # reshape(-1): a 1-element tensor for the reduced losses (the test reshapes too).
        case(name, lambda t, s=s, red=red: F.cross_entropy(t, target, label_smoothing=s, reduction=red).reshape(-1),
             logits)

save(sys.argv[1], out)
