"""PyTorch reference for pooling and batch norm: values, gradients, running stats (f32).

Random shapes and parameters (seeded). Per case NAME (max_pool2d.K, avg_pool2d.K,
adaptive_avg_pool2d.K, batch_norm.K) it writes NAME.x, NAME.v (the output gradient),
NAME.out, NAME.grad_x and NAME.params (i64):
  pools:      [kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, count_include_pad]
              (max_pool2d also NAME.indices)
  adaptive:   [out_h, out_w]
  batch_norm: [training, momentum * 1e6, eps * 1e12] plus NAME.weight, NAME.bias,
              NAME.running_mean / NAME.running_var (before) and NAME.running_mean_out /
              NAME.running_var_out (after), NAME.grad_weight, NAME.grad_bias.
"""
import random
import sys

import torch
import torch.nn.functional as F

from st import save

torch.manual_seed(0)
rng = random.Random(0)
out = {}


def record(name, x, y):
    v = torch.randn_like(y)
    (y * v).sum().backward()
    out[f"{name}.x"] = x.detach()
    out[f"{name}.v"] = v
    out[f"{name}.out"] = y.detach()
    out[f"{name}.grad_x"] = x.grad


def overhangs(shape, y, k, s, p, d):
    """True when ceil_mode gave an output more than floor mode would."""
    return any(y.shape[2 + j] != (shape[2 + j] + 2 * p[j] - d[j] * (k[j] - 1) - 1) // s[j] + 1 for j in range(2))


def random_pool(dilated):
    while True:
        shape = [rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 12), rng.randint(1, 12)]
        k = [rng.randint(1, 4), rng.randint(1, 4)]
        s = [rng.randint(1, 3), rng.randint(1, 3)]
        p = [rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2)]
        d = [rng.randint(1, 2), rng.randint(1, 2)] if dilated else [1, 1]
        ceil_mode = rng.random() < 0.5
        include = rng.random() < 0.5
        x = torch.randn(*shape)
        try:
            if dilated:
                F.max_pool2d(x, k, s, p, d, ceil_mode)
            else:
                F.avg_pool2d(x, k, s, p, ceil_mode, include)
        except RuntimeError:
            continue  # PyTorch rejects it (empty output): draw again
        return x, k, s, p, d, ceil_mode, include


# Fixed cases where ceil_mode adds a window that overhangs the padded input, then random ones.
max_cases = [((2, 3, 8, 8), [3, 3], [2, 2], [1, 1], [1, 1], True),
             ((1, 2, 6, 10), [2, 3], [3, 2], [1, 1], [1, 2], True)]
for i in range(16):
    x, k, s, p, d, ceil_mode, _ = random_pool(True)
    max_cases.append((tuple(x.shape), k, s, p, d, ceil_mode))
for i, (shape, k, s, p, d, ceil_mode) in enumerate(max_cases):
    x = torch.randn(*shape, requires_grad=True)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)
    assert i >= 2 or overhangs(shape, y, k, s, p, d)
    record(f"max_pool2d.{i}", x, y)
    out[f"max_pool2d.{i}.indices"] = idx
    out[f"max_pool2d.{i}.params"] = torch.tensor(k + s + p + d + [int(ceil_mode), 1])

avg_cases = [((2, 3, 8, 8), [3, 3], [2, 2], [1, 1], True, True), ((2, 3, 8, 8), [3, 3], [2, 2], [1, 1], True, False),
             ((1, 2, 6, 11), [2, 4], [3, 3], [1, 2], True, True), ((1, 2, 6, 11), [2, 4], [3, 3], [1, 2], True, False),
             ((2, 2, 6, 6), [3, 3], [2, 2], [0, 0], True, True)]
for i in range(16):
    x, k, s, p, _, ceil_mode, include = random_pool(False)
    avg_cases.append((tuple(x.shape), k, s, p, ceil_mode, include))
for i, (shape, k, s, p, ceil_mode, include) in enumerate(avg_cases):
    x = torch.randn(*shape, requires_grad=True)
    y = F.avg_pool2d(x, k, s, p, ceil_mode, include)
    assert i >= 5 or overhangs(shape, y, k, s, p, [1, 1])
    record(f"avg_pool2d.{i}", x, y)
    out[f"avg_pool2d.{i}.params"] = torch.tensor(k + s + p + [1, 1, int(ceil_mode), int(include)])

adaptive = [((2, 3, 5, 5), (3, 3)), ((1, 2, 7, 7), (7, 7)), ((2, 2, 7, 5), (3, 2)), ((3, 4, 7, 7), (1, 1)),
            ((1, 3, 3, 4), (5, 6)), ((2, 3, 9, 11), (4, 3))]
for i in range(4):
    adaptive.append(((rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 12), rng.randint(1, 12)),
                     (rng.randint(1, 6), rng.randint(1, 6))))
for i, (shape, size) in enumerate(adaptive):
    x = torch.randn(*shape, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, size)
    record(f"adaptive_avg_pool2d.{i}", x, y)
    out[f"adaptive_avg_pool2d.{i}.params"] = torch.tensor(list(size))

for i in range(12):
    four_d = i % 3 != 0
    training = i % 4 != 3
    c = rng.randint(1, 6)
    shape = [rng.randint(2, 6), c] + ([rng.randint(1, 7), rng.randint(1, 7)] if four_d else [])
    momentum = rng.choice([0.1, 0.3, 0.01])
    eps = rng.choice([1e-5, 1e-3])
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_(True)
    w = (torch.rand(c) + 0.5).requires_grad_(True)
    b = torch.randn(c).requires_grad_(True)
    rm, rv = torch.randn(c), torch.rand(c) + 0.5
    rm_out, rv_out = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm_out, rv_out, w, b, training, momentum, eps)
    name = f"batch_norm.{i}"
    record(name, x, y)
    out[f"{name}.weight"] = w.detach()
    out[f"{name}.bias"] = b.detach()
    out[f"{name}.grad_weight"] = w.grad
    out[f"{name}.grad_bias"] = b.grad
    out[f"{name}.running_mean"] = rm
    out[f"{name}.running_var"] = rv
    out[f"{name}.running_mean_out"] = rm_out
    out[f"{name}.running_var_out"] = rv_out
    out[f"{name}.params"] = torch.tensor([int(training), round(momentum * 1e6), round(eps * 1e12)])

save(sys.argv[1], out)
