"""PyTorch reference for `tether analyze --r2` (tests/train/test_analyze.cpp).

usage: ref_analyze.py OUT

A seeded torchvision resnet18 with a 10-class head is the source (w0); the fine-tuned model has
every conv weight moved by 0.02 N(0, 1) and a 3-class head. N = 6 seeded inputs 3x32x32.
Writes `w0.<name>`, `w.<name>`, `input` [6,3,32,32] and, per tap of layer1..layer4, `r2.<tap>` [C]
(f64): the R² of the fine-tuned on the pretrained float32 activations over images and positions,
squared Pearson correlation computed in float64 (1 where y is constant, 0 where only x is).
"""
import sys

import torch

from seeded_model import seeded_model
from st import save

out_path = sys.argv[1]
source = seeded_model("resnet18", 10, seed=7).eval()
tuned = seeded_model("resnet18", 3, seed=8).eval()
gen = torch.Generator().manual_seed(12)
with torch.no_grad():
    state = {}
    for k, v in source.state_dict().items():
        if k.startswith("fc."):
            continue
        state[k] = v + 0.02 * torch.randn(v.shape, generator=gen) if v.dim() == 4 else v.clone()
    tuned.load_state_dict(state, strict=False)
out = {f"w0.{k}": v.clone() for k, v in source.state_dict().items()}
out.update({f"w.{k}": v.clone() for k, v in tuned.state_dict().items()})
x = torch.randn(6, 3, 32, 32, generator=gen)
out["input"] = x


def taps(model):
    got = {}
    for name in ["layer1", "layer2", "layer3", "layer4"]:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: got.__setitem__(name, o.double()))
    with torch.no_grad():
        model(x)
    return got


fx, fy = taps(source), taps(tuned)
for name in fx:
    a = fx[name].transpose(0, 1).reshape(fx[name].shape[1], -1)
    b = fy[name].transpose(0, 1).reshape(fy[name].shape[1], -1)
    ca, cb = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    sxx, syy, sxy = (ca * ca).sum(1), (cb * cb).sum(1), (ca * cb).sum(1)
    y_const = (b == b[:, :1]).all(1)
    x_const = (a == a[:, :1]).all(1)
    r2 = torch.where(y_const, torch.ones_like(sxx),
                     torch.where(x_const, torch.zeros_like(sxx), sxy ** 2 / (sxx * syy)))
    out[f"r2.{name}"] = r2
save(out_path, out)
