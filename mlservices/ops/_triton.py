"""The Triton backend: launchers for the kernels in mlservices.kernels.

Triton runs on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1 (tests only; never an
automatic choice on CPU).
"""

from __future__ import annotations

import os

from mlservices.ops._dispatch import register

try:
    import triton  # noqa: F401
except ImportError:
    AVAILABLE = False
else:
    AVAILABLE = True

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

if AVAILABLE:
    device_types = ("cuda", "cpu") if INTERPRET else ("cuda",)
    register("triton", device_types, {})
