#!/usr/bin/python3
"""Converts a PyTorch checkpoint (.pth, .pth.tar, .pt) to safetensors for tether.

usage: convert_torch.py IN [OUT] [--dtype f32] [--trust-pickle] [--list]

Finds the state dict (the top level, or nested under `state_dict`, `model` or
`model_state_dict`; a pickled nn.Module gives its state_dict()), strips DataParallel's
`module.` prefixes (e.g. the Places365 checkpoints), keeps tensors only (anything else, such as
`epoch`, is skipped with a note), and writes them contiguous and on the CPU in their own dtype
(F32/F64/F16/BF16/I64/I32/U8/BOOL), or with --dtype f32 every floating tensor as float32.
OUT defaults to IN with its extension replaced by .safetensors; it appears atomically.

Checkpoints are read with torch.load(weights_only=True), which runs no code from the file;
--trust-pickle allows arbitrary pickles (only for files from a source you trust).
"""
import argparse
import inspect
import os
import pickle
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save  # noqa: E402

NESTED_KEYS = ("state_dict", "model", "model_state_dict")
PREFIX = "module."


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def load_checkpoint(path, trust_pickle):
    safe_supported = "weights_only" in inspect.signature(torch.load).parameters
    if not trust_pickle and not safe_supported:
        sys.exit("convert_torch: this torch cannot load a checkpoint without running code from it; "
                 "pass --trust-pickle if you trust the file")
    options = {"weights_only": not trust_pickle} if safe_supported else {}
    try:
        return torch.load(path, map_location="cpu", **options)
    except pickle.UnpicklingError as e:
        if trust_pickle:
            raise
        # The restricted unpickler met something beyond plain weights.
        sys.exit(f"convert_torch: cannot read {path} as plain weights ({e}).\n"
                 "If you trust the file, pass --trust-pickle to allow arbitrary pickled objects.")
    except Exception as e:  # not a checkpoint at all, or a damaged one
        sys.exit(f"convert_torch: cannot read {path} as a PyTorch checkpoint ({type(e).__name__}: {e})")


def find_state_dict(checkpoint, notes):
    """The dict of parameters inside a checkpoint, and where it was found."""
    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint.state_dict(), "a pickled module's state_dict()"
    if not isinstance(checkpoint, dict):
        sys.exit(f"convert_torch: the checkpoint is a {type(checkpoint).__name__}, not a dict of tensors")
    for key in NESTED_KEYS:
        value = checkpoint.get(key)
        if isinstance(value, torch.nn.Module):
            value = value.state_dict()
        if isinstance(value, dict):
            others = [k for k in checkpoint if k != key]
            if others:
                notes.append(f"ignored the checkpoint's other entries: {', '.join(map(str, others))}")
            return value, f"'{key}'"
    return checkpoint, "the top level"


def clean(state, dtype, notes):
    """Tensors only, `module.` prefixes stripped, optionally cast to float32."""
    out, stripped = {}, 0
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            notes.append(f"skipped '{name}' ({type(value).__name__}, not a tensor)")
            continue
        new = str(name)
        while new.startswith(PREFIX):
            new = new[len(PREFIX):]
        stripped += new != name
        if new in out:
            sys.exit(f"convert_torch: two tensors are named '{new}' once '{PREFIX}' prefixes are stripped")
        if dtype == "f32" and value.is_floating_point():
            value = value.float()
        out[new] = value.detach().cpu().contiguous()
    if stripped:
        notes.append(f"stripped '{PREFIX}' from {stripped} names")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="PyTorch checkpoint (.pth, .pth.tar, .pt)")
    parser.add_argument("output", nargs="?", help="safetensors file to write (default: IN with .safetensors)")
    parser.add_argument("--dtype", choices=["keep", "f32"], default="keep",
                        help="f32: cast floating tensors to float32 (default: keep each tensor's dtype)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow arbitrary pickled objects in the checkpoint (runs code from the file)")
    parser.add_argument("--list", action="store_true", help="print every tensor written")
    args = parser.parse_args()
    if not os.path.isfile(args.input):
        sys.exit(f"convert_torch: no such file: {args.input}")
    if sys.byteorder != "little":
        sys.exit("convert_torch: safetensors is little-endian; this machine is not")
    output = args.output
    if output is None:
        base = args.input
        for ext in (".pth.tar", ".pth", ".pt", ".tar", ".ckpt", ".bin"):
            if base.endswith(ext):
                base = base[: -len(ext)]
                break
        output = base + ".safetensors"

    notes = []
    state, where = find_state_dict(load_checkpoint(args.input, args.trust_pickle), notes)
    tensors = clean(state, args.dtype, notes)
    if not tensors:
        sys.exit(f"convert_torch: no tensors found in {args.input} (state dict at {where})")
    nbytes = save(output, tensors, {"format": "pt", "source": os.path.basename(args.input)})

    counts = {}
    for t in tensors.values():
        counts[dtype_name(t)] = counts.get(dtype_name(t), 0) + 1
    if args.list:
        for name in sorted(tensors):
            t = tensors[name]
            print(f"  {name}  {dtype_name(t)}  {list(t.shape)}")
    print(f"wrote {output}: {len(tensors)} tensors ({', '.join(f'{n} {d}' for d, n in sorted(counts.items()))}), "
          f"{nbytes} bytes of data, state dict from {where}")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
