"""PyTorch reference for matmul, linear and conv2d: values and every gradient (f32).

Per case NAME it writes the inputs, NAME.v (the output gradient), NAME.out and the
gradients of every input:
  matmul.K:  NAME.a, NAME.b, NAME.grad_a, NAME.grad_b (NumPy shape kinds, broadcasting)
  linear.K:  NAME.x, NAME.w, [NAME.b], NAME.grad_x, NAME.grad_w, [NAME.grad_b]
  conv2d.K:  NAME.x, NAME.w, [NAME.b], NAME.grad_x, NAME.grad_w, [NAME.grad_b] and
             NAME.params (i64): [sh, sw, ph, pw, dh, dw, groups]
Fixed conv cases cover groups, depthwise (with a channel multiplier), stride 2 and
dilation; random ones (seeded) follow.
"""
import random
import sys

import torch
import torch.nn.functional as F

from st import save

torch.manual_seed(0)
rng = random.Random(0)
out = {}


def record(name, inputs, y):
    """inputs: dict of short name -> leaf tensor requiring grad."""
    v = torch.randn_like(y)
    (y * v).sum().backward()
    out[f"{name}.v"] = v
    out[f"{name}.out"] = y.detach()
    for key, t in inputs.items():
        out[f"{name}.{key}"] = t.detach()
        out[f"{name}.grad_{key}"] = t.grad


def leaf(*shape):
    return torch.randn(*shape).requires_grad_(True)


# ---- matmul: every NumPy shape kind, then random batched/broadcast ones -------------------
mm_shapes = [((7,), (7,)), ((7,), (7, 5)), ((6, 7), (7,)), ((6, 7), (7, 5)), ((3, 6, 7), (7, 5)),
             ((3, 6, 7), (3, 7, 5)), ((2, 1, 6, 7), (3, 7, 5)), ((6, 7), (4, 7, 5)), ((7,), (2, 7, 5)),
             ((2, 3, 6, 7), (7,)), ((64, 33), (33, 65))]
for _ in range(6):
    m, k, n = rng.randint(1, 40), rng.randint(1, 40), rng.randint(1, 40)
    batch = [rng.randint(1, 4) for _ in range(rng.randint(0, 2))]
    bb = [d if rng.random() < 0.5 else 1 for d in batch]
    mm_shapes.append((tuple(batch + [m, k]), tuple(bb + [k, n])))
for i, (sa, sb) in enumerate(mm_shapes):
    a, b = leaf(*sa), leaf(*sb)
    record(f"matmul.{i}", {"a": a, "b": b}, torch.matmul(a, b))

# ---- linear -----------------------------------------------------------------------------------
lin_shapes = [((5,), 4, True), ((9, 5), 4, True), ((9, 5), 4, False), ((2, 3, 17), 33, True), ((128, 256), 100, True),
              ((3, 1, 8), 1, False)]
for i, (xs, out_features, bias) in enumerate(lin_shapes):
    x, w = leaf(*xs), leaf(out_features, xs[-1])
    inputs = {"x": x, "w": w}
    if bias:
        inputs["b"] = leaf(out_features)
    record(f"linear.{i}", inputs, F.linear(x, w, inputs.get("b")))


# ---- conv2d -----------------------------------------------------------------------------------
def conv_case(i, n, c, h, w_, o, kh, kw, stride, pad, dil, groups, bias):
    x, w = leaf(n, c, h, w_), leaf(o, c // groups, kh, kw)
    inputs = {"x": x, "w": w}
    if bias:
        inputs["b"] = leaf(o)
    y = F.conv2d(x, w, inputs.get("b"), stride, pad, dil, groups)
    record(f"conv2d.{i}", inputs, y)
    out[f"conv2d.{i}.params"] = torch.tensor([stride[0], stride[1], pad[0], pad[1], dil[0], dil[1], groups])


conv_cases = [
    # n, c, h, w, o, kh, kw, stride, pad, dil, groups, bias
    (2, 8, 12, 12, 16, 3, 3, (1, 1), (1, 1), (1, 1), 1, True),      # 3x3 same
    (3, 16, 15, 15, 8, 3, 3, (2, 2), (1, 1), (1, 1), 1, False),     # stride 2
    (2, 8, 40, 40, 8, 3, 3, (2, 2), (1, 1), (1, 1), 1, True),       # stride 2, long rows
    (2, 6, 13, 11, 4, 3, 3, (1, 1), (2, 2), (2, 2), 1, True),       # dilation
    (2, 8, 10, 10, 12, 3, 3, (1, 1), (1, 1), (1, 1), 4, True),      # groups
    (3, 16, 14, 14, 16, 3, 3, (1, 1), (1, 1), (1, 1), 16, False),   # depthwise
    (2, 8, 15, 15, 16, 5, 5, (2, 2), (2, 2), (1, 1), 8, True),      # depthwise x2, stride 2
    (2, 32, 9, 9, 16, 1, 1, (1, 1), (0, 0), (1, 1), 1, True),       # 1x1
    (2, 16, 28, 28, 32, 1, 1, (2, 2), (0, 0), (1, 1), 1, False),    # 1x1 stride 2
    (1, 3, 64, 64, 8, 7, 7, (2, 2), (3, 3), (1, 1), 1, False),      # a stem
    (2, 64, 28, 28, 64, 3, 3, (1, 1), (1, 1), (1, 1), 1, False),    # per-image bands
    (8, 64, 7, 7, 32, 3, 3, (1, 1), (1, 1), (1, 1), 1, True),       # small maps, chunk
]
for _ in range(8):
    groups = rng.choice([1, 1, 2, 3])
    c, o = groups * rng.randint(1, 5), groups * rng.randint(1, 5)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    stride = (rng.randint(1, 3), rng.randint(1, 3))
    dil = (rng.randint(1, 2), rng.randint(1, 2))
    pad = (rng.randint(0, kh // 2 + 1), rng.randint(0, kw // 2 + 1))
    h = rng.randint(dil[0] * (kh - 1) + 1, 20)
    w_ = rng.randint(dil[1] * (kw - 1) + 1, 20)
    conv_cases.append((rng.randint(1, 3), c, h, w_, o, kh, kw, stride, pad, dil, groups, rng.random() < 0.5))
for i, case in enumerate(conv_cases):
    conv_case(i, *case)

save(sys.argv[1], out)
