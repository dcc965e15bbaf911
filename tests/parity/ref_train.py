"""PyTorch reference for SPEC 9's reproducible run (tests/train/test_train_cli.cpp): the same
fine-tuning written directly in PyTorch, to compare with `tether train --shuffle none
--augment none` on the same files.

usage: ref_train.py OUT DATA_DIR STEPS BATCH LR MOMENTUM ALPHA BETA BN

A seeded resnet18 with a 3-class head (w0, written as `w0.<name>`, parameters and buffers) is
fine-tuned on DATA_DIR/train (torchvision's ImageFolder: classes and files sorted, PIL's RGB
conversion, ToTensor, Normalize; no resize: the images are 28x28 and so is the input) in
dataset order, batch BATCH, last partial batch dropped, with SGD (momentum, dampening 0) on
mean cross-entropy + the L2-SP penalty of SPEC 2:
    alpha/2 sum_S ||w - w0||^2 + beta/2 sum_Sbar ||w||^2,
S = the conv/linear weights (ndim >= 2) outside the head, Sbar = fc.weight. The weights after
STEPS updates are written as `final.<name>`. BN is `train` (batch statistics) or `eval`
(running statistics, affine parameters trained: `--bn eval`).
"""
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
model.train()
if bn_mode == "eval":
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
step = 0
while step < steps:
    for x, y in loader:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        omega_s = sum(((params[n] - w0[n]) ** 2).sum() for n in inherited)
        omega_head = (params["fc.weight"] ** 2).sum()
        total = loss + alpha / 2 * omega_s + beta / 2 * omega_head
        opt.zero_grad()
        total.backward()
        opt.step()
        step += 1
        if step == steps:
            break
out.update({f"final.{k}": v.clone() for k, v in model.state_dict().items()})
save(out_path, out)
