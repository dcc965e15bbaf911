"""PyTorch reference for elementwise ops and reductions: values and gradients (f32).

Writes, per case NAME: NAME.in0[, NAME.in1], NAME.v (the output gradient), NAME.out,
NAME.grad0[, NAME.grad1].
"""
import sys

import torch

from st import save

torch.manual_seed(0)
out = {}


def case(name, fn, *inputs):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    y = fn(*xs)
    v = torch.randn_like(y)
    (y * v).sum().backward()
    for i, x in enumerate(xs):
        out[f"{name}.in{i}"] = x.detach()
        out[f"{name}.grad{i}"] = x.grad
    out[f"{name}.v"] = v
    out[f"{name}.out"] = y.detach()


a = torch.randn(4, 5, 6)
b = torch.randn(5, 1)
pos = torch.rand(4, 5, 6) + 0.5
case("add", torch.add, a, b)
case("sub", torch.sub, a, b)
case("mul", torch.mul, a, b)
case("div", torch.div, a, pos)
case("pow", torch.pow, pos, b)
case("maximum", torch.maximum, a, b)
for name in ["exp", "tanh", "sigmoid", "relu", "abs", "neg"]:
    case(name, getattr(torch, name), a)
case("silu", torch.nn.functional.silu, a)
case("log", torch.log, pos)
case("sqrt", torch.sqrt, pos)
case("clamp", lambda x: torch.clamp(x, -0.5, 0.7), a)
case("sum_all", lambda x: x.sum().reshape(1), a)
case("sum_02", lambda x: x.sum(dim=(0, 2)), a)
case("mean_1k", lambda x: x.mean(dim=1, keepdim=True), a)
case("amax_2", lambda x: x.amax(dim=2), a)
case("norm", lambda x: torch.linalg.vector_norm(x).reshape(1), a)
case("softplus_chain", lambda x: torch.log(1 + torch.exp(x)) * x - x / 3, a)

save(sys.argv[1], out)
