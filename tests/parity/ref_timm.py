"""PyTorch reference for loading timm-named weights (tests/models/test_timm_names.cpp).

usage: ref_timm.py OUT

For resnet18, vgg16 and efficientnet_b0 (torchvision, 10 classes, seeded random weights with
randomised BN statistics), the state dict is renamed to timm's names and layouts with the
mapping below, written independently of tether's (models/weights.cpp), as `<model>.w.<timm
name>` (the names also comma-separated in the metadata `<model>.names`), with an input
`<model>.input` and the torchvision model's eval-mode logits `<model>.logits`. timm's layouts:
- ResNet: the same names as torchvision.
- VGG: features.* unchanged; classifier.0 (Linear 25088->4096) is pre_logits.fc1, a 7x7 Conv2d
  512->4096 (weight reshaped to [4096, 512, 7, 7]); classifier.3 is pre_logits.fc2, a 1x1
  Conv2d; classifier.6 is head.fc.
- EfficientNet-B0: conv_stem/bn1 (features.0), blocks.S.B.* (features.S+1.B.block.*), conv_head/bn2
  (features.8), classifier (classifier.1); no num_batches_tracked (timm checkpoints often lack it).
"""
import sys

import torch
import torchvision

from seeded_model import seeded_model
from st import save


def vgg_to_timm(name, t):
    convs = {"classifier.0.": ("pre_logits.fc1.", (512, 7, 7)), "classifier.3.": ("pre_logits.fc2.", (4096, 1, 1))}
    for prefix, (new, kernel) in convs.items():
        if name.startswith(prefix):
            suffix = name[len(prefix):]
            return new + suffix, t.reshape(t.shape[0], *kernel) if suffix == "weight" else t
    if name.startswith("classifier.6."):
        return "head.fc." + name[len("classifier.6."):], t
    return name, t


# torchvision block.<module index>.<part> -> timm's name, per block type.
DEPTHWISE_SEPARABLE = {("0", "0"): "conv_dw", ("0", "1"): "bn1", ("1", "fc1"): "se.conv_reduce",
                       ("1", "fc2"): "se.conv_expand", ("2", "0"): "conv_pw", ("2", "1"): "bn2"}
INVERTED_RESIDUAL = {("0", "0"): "conv_pw", ("0", "1"): "bn1", ("1", "0"): "conv_dw", ("1", "1"): "bn2",
                     ("2", "fc1"): "se.conv_reduce", ("2", "fc2"): "se.conv_expand", ("3", "0"): "conv_pwl",
                     ("3", "1"): "bn3"}


def efficientnet_to_timm(name, t):
    parts = name.split(".")
    if parts[0] == "classifier":
        return "classifier." + ".".join(parts[2:]), t
    stage = int(parts[1])
    if stage in (0, 8):
        module = {(0, "0"): "conv_stem", (0, "1"): "bn1", (8, "0"): "conv_head", (8, "1"): "bn2"}[(stage, parts[2])]
        return module + "." + ".".join(parts[3:]), t
    block, kind, part = parts[2], parts[4], parts[5]
    table = DEPTHWISE_SEPARABLE if stage == 1 else INVERTED_RESIDUAL
    return f"blocks.{stage - 1}.{block}.{table[(kind, part)]}." + ".".join(parts[6:]), t


CASES = {  # model: (renaming, input size)
    "resnet18": (lambda name, t: (name, t), 64),
    "vgg16": (vgg_to_timm, 32),
    "efficientnet_b0": (efficientnet_to_timm, 64),
}

out, names = {}, {}
for model_name, (rename, size) in CASES.items():
    model = seeded_model(model_name, 10)
    for name, t in model.state_dict().items():
        if model_name.startswith("efficientnet") and name.endswith("num_batches_tracked"):
            continue
        new, value = rename(name, t)
        out[f"{model_name}.w.{new}"] = value
        names.setdefault(f"{model_name}.names", []).append(new)
    x = torch.randn(2, 3, size, size)
    model.eval()
    with torch.no_grad():
        out[f"{model_name}.logits"] = model(x)
    out[f"{model_name}.input"] = x

save(sys.argv[1], out, {key: ",".join(value) for key, value in names.items()})  # the C++ test's list of names
