"""PyTorch reference for the optimizers and lr schedules (tests/optim/test_optim_parity.cpp).

Optimizers: three parameters in two groups with different lr (lr_mult) and weight decay,
six seeded gradients each, one missing (the parameter is skipped that step), and an lr that
changes between steps as a schedule would. Each config runs torch.optim.SGD / Adam / AdamW
(single-tensor implementations: foreach=False) in float64 and float32. Writes
  init.<dt>.<param>, grad.<dt>.<step>.<param>             inputs (dt: f64 / f32)
  <config>.<dt>.<step>.<param>                           the parameter after update <step>
  <config>.<dt>.state.<param>.<buffer>                   the optimizer state at the end
and in the metadata: "optim" (JSON: parameters, groups, steps, lrs, configs, step counts) and
"schedules" (JSON: the schedule configs); sched.<name> holds torch's lr for iterations 0..29
(f64), read before each optimizer.step() / scheduler.step() pair.
"""
import json
import sys
import warnings

import torch

from st import save

warnings.filterwarnings("ignore")  # scheduler.step(0) inside SequentialLR warns (deprecated epoch argument)

out = {}

# ---- optimizers ------------------------------------------------------------------------------
PARAMS = [("conv.weight", [2, 3, 3, 3], 0), ("fc.weight", [5, 3], 0), ("fc.bias", [7], 1)]  # (name, shape, group)
LR_MULTS = [1.0, 2.5]
STEPS = 6
BASE_LRS = [0.1, 0.1, 0.05, 0.05, 0.02, 0.01]  # SGD; Adam uses a tenth of these
GRAD_SCALES = [1.0, 3.0, 0.2, 2.0, 0.1, 1.0]   # so that AMSGrad's running max differs from v
NO_GRAD = (2, "fc.bias")                         # step 2: fc.bias has no gradient
CONFIGS = [
    dict(name="sgd_plain", opt="sgd", momentum=0.0, wd=[0.0, 0.0]),
    dict(name="sgd_momentum", opt="sgd", momentum=0.9, wd=[0.0, 0.0]),
    dict(name="sgd_nesterov", opt="sgd", momentum=0.9, nesterov=True, wd=[1e-2, 0.0]),
    dict(name="sgd_wd", opt="sgd", momentum=0.9, wd=[1e-2, 3e-2]),
    dict(name="sgd_dampening", opt="sgd", momentum=0.9, dampening=0.1, wd=[1e-2, 0.0]),
    dict(name="sgd_wd_nomomentum", opt="sgd", momentum=0.0, wd=[1e-2, 0.0]),
    dict(name="adam_plain", opt="adam", wd=[0.0, 0.0]),
    dict(name="adam_wd", opt="adam", wd=[1e-2, 0.0]),
    dict(name="adam_amsgrad", opt="adam", amsgrad=True, betas=[0.8, 0.99], eps=1e-6, wd=[1e-2, 1e-3]),
    dict(name="adamw", opt="adamw", wd=[0.05, 0.01]),
    dict(name="adamw_amsgrad", opt="adamw", amsgrad=True, wd=[0.05, 0.0]),
]

gen = torch.Generator().manual_seed(1234)
init64 = {name: torch.randn(shape, generator=gen, dtype=torch.float64) for name, shape, _ in PARAMS}
grads64 = [{name: GRAD_SCALES[s] * torch.randn(shape, generator=gen, dtype=torch.float64)
            for name, shape, _ in PARAMS if (s, name) != NO_GRAD} for s in range(STEPS)]


def make_optimizer(cfg, groups):
    lr = BASE_LRS[0]
    if cfg["opt"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.get("momentum", 0.0), dampening=cfg.get("dampening", 0.0),
                               nesterov=cfg.get("nesterov", False), foreach=False)
    cls = torch.optim.Adam if cfg["opt"] == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=tuple(cfg.get("betas", [0.9, 0.999])), eps=cfg.get("eps", 1e-8),
               amsgrad=cfg.get("amsgrad", False), foreach=False)


step_counts = {}
for dtype, dt in ((torch.float64, "f64"), (torch.float32, "f32")):
    for name, _, _ in PARAMS:
        out[f"init.{dt}.{name}"] = init64[name].to(dtype)
    for s in range(STEPS):
        for name, g in grads64[s].items():
            out[f"grad.{dt}.{s}.{name}"] = g.to(dtype)
    for cfg in CONFIGS:
        scale = 1.0 if cfg["opt"] == "sgd" else 0.1
        params = {name: init64[name].to(dtype).clone().requires_grad_(True) for name, _, _ in PARAMS}
        groups = [dict(params=[params[n] for n, _, gi in PARAMS if gi == g], weight_decay=cfg["wd"][g])
                  for g in range(2)]
        opt = make_optimizer(cfg, groups)
        for s in range(STEPS):
            base = BASE_LRS[s] * scale
            for g, group in enumerate(opt.param_groups):
                group["lr"] = base * LR_MULTS[g]  # the same double product as tether's group_lr
            for name, p in params.items():
                p.grad = grads64[s][name].to(dtype) if name in grads64[s] else None
            opt.step()
            for name, p in params.items():
                out[f"{cfg['name']}.{dt}.{s}.{name}"] = p.detach().clone()
        for name, p in params.items():
            for key, value in opt.state[p].items():
                if torch.is_tensor(value) and key != "step":
                    out[f"{cfg['name']}.{dt}.state.{name}.{key}"] = value.clone()
                elif key == "step":
                    step_counts.setdefault(cfg["name"], {})[name] = int(value.item())

optim_meta = dict(params=[dict(name=n, shape=sh, group=g) for n, sh, g in PARAMS], lr_mults=LR_MULTS,
                  steps=STEPS, base_lrs=BASE_LRS, configs=CONFIGS, step_counts=step_counts)

# ---- schedules -------------------------------------------------------------------------------
ITERS = 30
SCHEDULES = [
    dict(name="const", kind="const", base_lr=0.1),
    dict(name="const_warmup", kind="const", base_lr=0.1, warmup_iters=5, warmup_factor=0.1),
    dict(name="step", kind="step", base_lr=0.1, milestones=[5, 12, 20], gamma=0.1),
    dict(name="step_warmup", kind="step", base_lr=0.05, milestones=[3, 10], gamma=0.5, warmup_iters=4,
         warmup_factor=0.25),
    dict(name="step_warmup_milestone0", kind="step", base_lr=0.05, milestones=[0, 8], gamma=0.3, warmup_iters=3,
         warmup_factor=0.5),
    dict(name="exp", kind="exp", base_lr=0.1, gamma=0.9),
    dict(name="exp_warmup", kind="exp", base_lr=0.1, gamma=0.95, warmup_iters=6, warmup_factor=0.01),
    dict(name="cosine", kind="cosine", base_lr=0.1, total_iters=30),
    dict(name="cosine_min", kind="cosine", base_lr=0.1, total_iters=30, min_lr=1e-3),
    dict(name="cosine_warmup", kind="cosine", base_lr=3e-4, total_iters=30, min_lr=1e-5, warmup_iters=5,
         warmup_factor=0.1),
    dict(name="cosine_long", kind="cosine", base_lr=0.1, total_iters=100, min_lr=1e-4, warmup_iters=10,
         warmup_factor=0.001),
]


def main_scheduler(opt, c):
    kind = c["kind"]
    if kind == "const":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    if kind == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c["milestones"], gamma=c["gamma"])
    if kind == "exp":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=c["gamma"])
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c["total_iters"] - c.get("warmup_iters", 0),
                                                      eta_min=c.get("min_lr", 0.0))


for c in SCHEDULES:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=c["base_lr"])
    warmup = c.get("warmup_iters", 0)
    if warmup > 0:
        first = torch.optim.lr_scheduler.LinearLR(opt, start_factor=c["warmup_factor"], total_iters=warmup)
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [first, main_scheduler(opt, c)], milestones=[warmup])
    else:
        sched = main_scheduler(opt, c)
    lrs = []
    for it in range(ITERS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out[f"sched.{c['name']}"] = torch.tensor(lrs, dtype=torch.float64)

save(sys.argv[1], out, metadata=dict(optim=json.dumps(optim_meta), schedules=json.dumps(SCHEDULES)))
