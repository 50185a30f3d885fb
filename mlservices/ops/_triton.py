"""The Triton backend: the kernels in mlservices.kernels, each a torch custom op.

Every op is registered as ``mlservices_triton::<op>`` with a fake implementation (so
torch.compile can trace it) and handed to the dispatcher here. Triton runs on CUDA tensors, or on
CPU tensors under TRITON_INTERPRET=1 (tests only; never an automatic choice on CPU).
"""

from __future__ import annotations

import os

import torch

from mlservices.ops._dispatch import register

try:
    import triton  # noqa: F401
except ImportError:
    AVAILABLE = False
else:
    AVAILABLE = True

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

if AVAILABLE:
    # Importing the kernel modules registers the mlservices_triton custom ops.
    from mlservices.kernels import (  # noqa: F401
        l2_normalize,
        layer_norm,
        pack,
        pool,
        varlen_attention,
    )

    device_types = ("cuda", "cpu") if INTERPRET else ("cuda",)
    ops = torch.ops.mlservices_triton
    register(
        "triton",
        device_types,
        {
            "pack": ops.pack,
            "unpack": ops.unpack,
            "pool": ops.pool,
            "l2_normalize": ops.l2_normalize,
            "layer_norm": ops.layer_norm,
            "varlen_attention": ops.varlen_attention,
        },
    )
