"""safetensors writer for the parity reference scripts: `save(path, tensors)` writes their
inputs and PyTorch's outputs, which the C++ tests read back with tether's own reader
(core/safetensors.h). The writer itself is tools/safetensors_io.py, shared with
tools/convert_torch.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

from safetensors_io import save  # noqa: E402,F401
