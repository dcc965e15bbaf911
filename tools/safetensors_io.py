"""Writes safetensors files from torch tensors (no third-party package besides torch).

Shared by tools/convert_torch.py and the parity reference scripts (tests/parity/st.py).
Format: little-endian u64 header length, a JSON header {name: {dtype, shape, data_offsets}}
plus optional "__metadata__" of strings, padded with spaces to 8 bytes, then the packed
row-major data in the header's order. The file appears atomically (temporary file + rename).
"""
import json
import os
import struct

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def tensor_bytes(t):
    """Raw little-endian bytes of a tensor, contiguous on the CPU (bfloat16 has no numpy type)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save(path, tensors, metadata=None):
    """Writes {name: tensor} (names sorted) to `path`; returns the number of data bytes."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in DTYPES:
            raise ValueError(f"tensor '{name}': dtype {t.dtype} cannot be written "
                             f"(supported: {', '.join(str(d) for d in DTYPES)})")
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return offset
