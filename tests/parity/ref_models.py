"""PyTorch reference for a whole torchvision model (tests/models/test_model_parity.cpp).

usage: ref_models.py OUT MODEL NUM_CLASSES INPUT_SIZE BATCH MODES [f64] [--device cpu|cuda[:N]]

Seeded random weights (BN running statistics randomised too, so eval mode is meaningful) are
written under torchvision's names as `w.<name>`, with an input batch `input` and targets
`target`. For each mode in MODES (comma-separated eval,train): `<mode>.logits`, `<mode>.loss`,
`<mode>.grad.<param>` for every parameter, `<mode>.grad.input`, and after the train forward the
updated BN buffers as `<mode>.state.<name>`. Dropout and stochastic depth are off (SPEC 9's
`tether forward` convention): their modules stay in eval mode.

With `f64`, the same computation in float64 is added as `<mode>.grad64.*` / `<mode>.logits64`:
the truth against which both float32 implementations are measured where a train-mode
batch norm over few values makes float32 gradients ill-conditioned (PyTorch's own float32
gradients then differ from the truth by about 1%).

With `--device cuda` (tests/cuda/test_cuda_autograd_models.cpp) the same weights and inputs,
made on the CPU as above, are run on the GPU in strict float32 (TF32 off for convolutions and
matrix products, as tether's --tf32 none); results are written from the CPU as always.
"""
import sys

import torch
import torchvision

from seeded_model import seeded_model
from st import save

args = sys.argv[1:]
device = "cpu"
if "--device" in args:
    at = args.index("--device")
    device = args[at + 1]
    del args[at:at + 2]
device = torch.device(device)
if device.type == "cuda":
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
out_path, name, num_classes, size, batch, modes = args[:6]
with_f64 = len(args) > 6 and args[6] == "f64"
num_classes, size, batch = int(num_classes), int(size), int(batch)
model = seeded_model(name, num_classes)
out = {f"w.{k}": v.clone() for k, v in model.state_dict().items()}
x = torch.randn(batch, 3, size, size)
target = torch.randint(0, num_classes, (batch,))
out["input"], out["target"] = x, target

def run(model, mode, dtype, suffix):
    model.to(device)
    model.load_state_dict({k[2:]: v for k, v in out.items() if k.startswith("w.")})
    model.train(mode == "train")
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
            m.eval()
    model.zero_grad()
    xi = x.detach().to(device=device, dtype=dtype).clone().requires_grad_(True)
    logits = model(xi)
    loss = torch.nn.functional.cross_entropy(logits, target.to(device))
    loss.backward()
    out[f"{mode}.logits{suffix}"] = logits.detach().cpu()
    out[f"{mode}.loss{suffix}"] = loss.detach().reshape(1).cpu()
    out[f"{mode}.grad{suffix}.input"] = xi.grad.cpu()
    for k, p in model.named_parameters():
        out[f"{mode}.grad{suffix}.{k}"] = p.grad.cpu().clone()  # zero_grad() zeroes in place
    if mode == "train" and suffix == "":
        for k, v in model.state_dict().items():
            if "running" in k or "num_batches" in k:
                out[f"{mode}.state.{k}"] = v.cpu().clone()

for mode in modes.split(","):
    run(model, mode, torch.float32, "")
    if with_f64:
        run(model.double(), mode, torch.float64, "64")
        model.float()

save(out_path, out)
