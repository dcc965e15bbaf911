"""PyTorch float64 reference for SPEC 2's feature rows (tests/regularizers/test_feature_penalties.cpp).

usage: ref_feature_penalties.py OUT

A seeded resnet18 with 5 classes is w0 (written as `w0.<name>`); the trained model's weights w
are w0 plus seeded noise on every parameter (`w.<name>`). On the batch `x` [3, 3, 32, 32], in
float64, with the trained model in train mode (BN batch statistics) and the source network (w0)
in eval mode under no-grad:
    kd    = alpha/2 * (1/B) sum_i sum_taps sum_c ||F_c(w, x_i) - F_c(w0, x_i)||^2 / (H*W)
    delta = the same with each channel term times att.<tap>[c]
    fnp   = alpha/2 * (1/B) sum_i ||rep_i||^2,  rep = the input of fc
taps = layer1, layer3; alpha = 0.7. Written: `<reg>.value` and `<reg>.grad.<name>` (the
gradient of that value with respect to the parameters in CHECKED, float64).
"""
import copy
import sys

import torch

from seeded_model import seeded_model
from st import save

out_path = sys.argv[1]
CHECKED = ["conv1.weight", "bn1.weight", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight",
           "layer3.0.bn1.bias", "layer3.1.conv2.weight", "layer4.0.bn2.weight", "fc.weight"]
alpha, taps = 0.7, ["layer1", "layer3"]
source = seeded_model("resnet18", 5, seed=7)
out = {f"w0.{k}": v.clone() for k, v in source.state_dict().items()}
student = copy.deepcopy(source)
gen = torch.Generator().manual_seed(8)
with torch.no_grad():
    for p in student.parameters():
        p.add_(0.02 * torch.randn(p.shape, generator=gen))
out.update({f"w.{k}": v.clone() for k, v in student.named_parameters()})
x = torch.randn(3, 3, 32, 32, generator=gen)
att = {"layer1": torch.rand(64, generator=gen) * 4, "layer3": torch.rand(256, generator=gen) * 4}
out["x"] = x
out.update({f"att.{t}": a.clone() for t, a in att.items()})

source, student = source.double(), student.double()
source.eval()
student.train()


def features(model, x):
    got = {}
    hooks = [getattr(model, t).register_forward_hook(lambda m, i, o, t=t: got.__setitem__(t, o)) for t in taps]
    hooks.append(model.fc.register_forward_hook(lambda m, i, o: got.__setitem__("rep", i[0])))
    model(x)
    for h in hooks:
        h.remove()
    return got


with torch.no_grad():
    teacher = features(source, x.double())
for reg in ["kd", "delta", "fnp"]:
    s = features(student, x.double())
    b = x.shape[0]
    if reg == "fnp":
        value = alpha / 2 / b * (s["rep"] ** 2).sum()
    else:
        value = 0
        for t in taps:
            d = ((s[t] - teacher[t]) ** 2).sum(dim=(2, 3))  # [B, C]
            if reg == "delta":
                d = d * att[t].double()
            hw = s[t].shape[2] * s[t].shape[3]
            value = value + alpha / 2 / b * d.sum() / hw
    params = dict(student.named_parameters())
    grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
    out[f"{reg}.value"] = value.detach().reshape(1)
    for (n, p), g in zip(params.items(), grads):
        if n in CHECKED:
            out[f"{reg}.grad.{n}"] = (g if g is not None else torch.zeros_like(p)).detach()
save(out_path, out)
