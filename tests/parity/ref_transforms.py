"""torchvision reference for data/transforms: resize (antialiased bilinear/bicubic, down- and
up-sampling, exact size and shorter side), crops, flips, ten-crop, Gaussian blur, colour
adjustments, normalisation, the PtR resize_pad (torch resize then F.pad, written out here) and
PIL's uint8 bilinear resize for the stated PIL tolerance.

Writes img.<NAME> (the seeded float inputs, [3, H, W]) and <case>.out for every case; the
metadata entry "cases" is a JSON list of {name, op, src, args} that the C++ test
(tests/data/test_transforms_parity.cpp) walks, so a case added here is checked there.
torchvision 0.14 (Debian) has no transforms.v2; transforms.functional computes the same on
float tensors.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as TF
import torchvision.transforms.functional as F
from PIL import Image as PILImage
from torchvision.transforms import InterpolationMode

from st import save

torch.manual_seed(0)
images = {
    "A": torch.rand(3, 375, 500),   # a typical photo, downsampled to 224-ish
    "B": torch.rand(3, 37, 53),     # odd sizes
    "C": torch.rand(3, 20, 20),     # square
    "D": torch.rand(3, 16, 24),     # upsampled
    "E": torch.rand(3, 41, 29),     # tall
}
# uint8 version of A for PIL (values k/255 exactly representable as the C++ input).
a8 = (images["A"] * 255).round().to(torch.uint8)
images["A8"] = a8.float() / 255

out, cases = {}, []
MODES = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def case(name, op, src, args, result):
    cases.append({"name": name, "op": op, "src": src, "args": list(args)})
    out[name + ".out"] = result.contiguous()


def resize_pad(img, size, mode):
    """PtR: the longer side to `size` (the shorter as int(size * short / long)), then zero
    padding to size x size with the image centred (the extra pixel, if any, after it)."""
    _, h, w = img.shape
    if h >= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    r = F.resize(img, [nh, nw], interpolation=MODES[mode], antialias=True)
    top, left = (size - nh) // 2, (size - nw) // 2
    return TF.pad(r, [left, size - nw - left, top, size - nh - top])


for mode in ("bilinear", "bicubic"):
    # Exact sizes: down, down by odd factors, up, mixed (down one axis, up the other).
    for src, (h, w) in (("A", (200, 150)), ("B", (20, 28)), ("C", (7, 13)), ("D", (40, 60)), ("B", (30, 80)),
                        ("B", (50, 70))):
        r = F.resize(images[src], [h, w], interpolation=MODES[mode], antialias=True)
        case(f"resize.{mode}.{src}.{h}x{w}", "resize", src, [h, w, int(mode == "bicubic")], r)
    # Shorter side (torchvision's _compute_resized_output_size).
    for src, s in (("A", 256), ("B", 20), ("C", 224), ("D", 40), ("E", 24)):
        r = F.resize(images[src], s, interpolation=MODES[mode], antialias=True)
        case(f"resize_shorter.{mode}.{src}.{s}", "resize_shorter", src, [s, int(mode == "bicubic")], r)
    for src, s in (("A", 256), ("B", 47), ("E", 36), ("D", 41)):
        case(f"resize_pad.{mode}.{src}.{s}", "resize_pad", src, [s, int(mode == "bicubic")],
             resize_pad(images[src], s, mode))

# Upsampling: antialias=True is plain bilinear interpolation (align_corners=False), to float
# rounding; for bicubic it is not (PIL's a = -0.5 and normalised weights vs a = -0.75).
up_aa = TF.interpolate(images["D"][None], size=(40, 60), mode="bilinear", align_corners=False, antialias=True)[0]
up_plain = TF.interpolate(images["D"][None], size=(40, 60), mode="bilinear", align_corners=False)[0]
assert (up_aa - up_plain).abs().max() < 1e-6
case("resize.plain_bilinear_up.D.40x60", "resize", "D", [40, 60, 0], up_plain)

for src, (h, w) in (("A", (224, 224)), ("B", (224, 224)), ("B", (30, 60)), ("B", (34, 50)), ("C", (7, 7)),
                    ("C", (19, 19)), ("C", (17, 17)), ("C", (15, 15)), ("E", (41, 40))):
    case(f"center_crop.{src}.{h}x{w}", "center_crop", src, [h, w], F.center_crop(images[src], [h, w]))

for src, (t, l, h, w) in (("A", (10, 20, 100, 150)), ("B", (-3, 5, 20, 60)), ("C", (0, 0, 20, 20))):
    case(f"crop.{src}.{t}.{l}.{h}x{w}", "crop", src, [t, l, h, w], F.crop(images[src], t, l, h, w))

for src in ("B", "C"):
    case(f"hflip.{src}", "hflip", src, [], F.hflip(images[src]))

for src, s in (("B", 20), ("A", 224), ("C", 20)):
    case(f"ten_crop.{src}.{s}", "ten_crop", src, [s], torch.stack(F.ten_crop(images[src], s)))

for src, k, sigma in (("B", 7, 1.0), ("B", 13, 2.0), ("A", 5, 0.7), ("C", 3, 0.3)):
    case(f"gaussian_blur.{src}.{k}.{sigma}", "gaussian_blur", src, [k, sigma],
         F.gaussian_blur(images[src], [k, k], [sigma, sigma]))

for f in (0.0, 0.5, 1.7):
    case(f"adjust_brightness.{f}", "adjust_brightness", "B", [f], F.adjust_brightness(images["B"], f))
for f in (0.0, 0.3, 1.8):
    case(f"adjust_contrast.{f}", "adjust_contrast", "B", [f], F.adjust_contrast(images["B"], f))
for f in (0.0, 0.4, 2.0):
    case(f"adjust_saturation.{f}", "adjust_saturation", "B", [f], F.adjust_saturation(images["B"], f))

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
case("normalize.imagenet", "normalize", "B", MEAN + STD, F.normalize(images["B"], MEAN, STD))
case("normalize.mean_only", "normalize", "C", [0.5, 0.25, 0.125, 1, 1, 1],
     F.normalize(images["C"], [0.5, 0.25, 0.125], [1, 1, 1]))

# PIL on uint8: ImagingResample, the same weights in fixed point, rounding the result to 1/255.
# Bilinear only: for bicubic PIL also rounds and clips the horizontal pass to uint8 before the
# vertical one, which moves overshooting pixels by up to ~0.055 on this noise image.
pil_in = PILImage.fromarray(a8.permute(1, 2, 0).numpy())
for h, w in ((200, 150), (256, 341)):
    r = np.asarray(pil_in.resize((w, h), PILImage.BILINEAR))
    case(f"pil.bilinear.A8.{h}x{w}", "pil_resize", "A8", [h, w, 0],
         torch.from_numpy(r.copy()).permute(2, 0, 1).float() / 255)

for name, img in images.items():
    out["img." + name] = img.contiguous()
save(sys.argv[1], out, metadata={"cases": json.dumps(cases)})
