"""PyTorch reference for SPEC 9's reproducible run (tests/train/test_train_cli.cpp): the same
fine-tuning written directly in PyTorch, to compare with `tether train --shuffle none
--augment none` on the same files.

usage: ref_train.py OUT DATA_DIR STEPS BATCH LR MOMENTUM ALPHA BETA BN [REG]

A seeded resnet18 with a 3-class head (w0, written as `w0.<name>`, parameters and buffers) is
fine-tuned on DATA_DIR/train (torchvision's ImageFolder: classes and files sorted, PIL's RGB
conversion, ToTensor, Normalize; no resize: the images are 28x28 and so is the input) in
dataset order, batch BATCH, last partial batch dropped, with SGD (momentum, dampening 0) on
mean cross-entropy + the L2-SP penalty of SPEC 2:
    alpha/2 sum_S ||w - w0||^2 + beta/2 sum_Sbar ||w||^2,
S = the conv/linear weights (ndim >= 2) outside the head, Sbar = fc.weight. The weights after
STEPS updates are written as `final.<name>`. BN is `train` (batch statistics) or `eval`
(running statistics, affine parameters trained: `--bn eval`).
REG (default l2sp) may instead be one of SPEC 2's feature rows, with the same S̄ part:
    kd:    alpha/2 (1/B) sum_i sum_taps sum_c ||F_c(w, x_i) - F_c(w0, x_i)||^2 / (H*W)
    delta: the same, channel terms times `att.<tap>` (seeded uniform [0, 3), written out)
    fnp:   alpha/2 (1/B) sum_i ||rep_i||^2, rep = the input of fc
taps = layer1..layer4; the source network is a frozen copy of w0 in eval mode, run under
no-grad on the same batch. With a feature row, training starts from `init.<name>` = w0 plus
seeded noise (tether's --init), so the features differ from the source's from the first step.
"""
import copy
import sys

import torch
import torchvision
from torchvision import transforms

from seeded_model import seeded_model
from st import save

out_path, data_dir = sys.argv[1:3]
steps, batch = int(sys.argv[3]), int(sys.argv[4])
lr, momentum, alpha, beta = (float(v) for v in sys.argv[5:9])
bn_mode = sys.argv[9]
reg = sys.argv[10] if len(sys.argv) > 10 else "l2sp"
mean, std = [0.286] * 3, [0.353] * 3

model = seeded_model("resnet18", 3)
out = {f"w0.{k}": v.clone() for k, v in model.state_dict().items()}
w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
inherited = [n for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("fc.")]

tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
dataset = torchvision.datasets.ImageFolder(f"{data_dir}/train", transform=tf)
loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, drop_last=True)
opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
params = dict(model.named_parameters())
taps = ["layer1", "layer2", "layer3", "layer4"]
source = copy.deepcopy(model).eval()
gen = torch.Generator().manual_seed(5)
att = {t: torch.rand(c, generator=gen) * 3 for t, c in zip(taps, [64, 128, 256, 512])}
out.update({f"att.{t}": a.clone() for t, a in att.items()})
if reg != "l2sp":
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    out.update({f"init.{k}": v.clone() for k, v in model.state_dict().items()})
feats, source_feats = {}, {}
for t in taps:
    getattr(model, t).register_forward_hook(lambda m, i, o, t=t: feats.__setitem__(t, o))
    getattr(source, t).register_forward_hook(lambda m, i, o, t=t: source_feats.__setitem__(t, o))
model.fc.register_forward_hook(lambda m, i, o: feats.__setitem__("rep", i[0]))


def omega_s(x):
    if reg == "l2sp":
        return sum(((params[n] - w0[n]) ** 2).sum() for n in inherited)
    if reg == "fnp":
        return (feats["rep"] ** 2).sum() / x.shape[0]
    with torch.no_grad():
        source(x)
    total = 0
    for t in taps:
        d = ((feats[t] - source_feats[t]) ** 2).sum(dim=(2, 3))
        if reg == "delta":
            d = d * att[t]
        total = total + d.sum() / (feats[t].shape[2] * feats[t].shape[3])
    return total / x.shape[0]


model.train()
if bn_mode == "eval":
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
step = 0
while step < steps:
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        omega_head = (params["fc.weight"] ** 2).sum()
        total = loss + alpha / 2 * omega_s(x) + beta / 2 * omega_head
        opt.zero_grad()
        total.backward()
        opt.step()
        step += 1
        if step == steps:
            break
out.update({f"final.{k}": v.clone() for k, v in model.state_dict().items()})
save(out_path, out)
