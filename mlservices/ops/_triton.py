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


def _map_source_kernels() -> None:
    """Map the checkout's kernels/ to mlservices.kernels when the package runs from a source
    tree on PYTHONPATH without being installed (installs map it through setup's package-dir)."""
    import importlib.util
    import sys
    from pathlib import Path

    if "mlservices.kernels" in sys.modules or importlib.util.find_spec("mlservices.kernels"):
        return
    folder = Path(__file__).resolve().parents[2] / "kernels"
    if not (folder / "__init__.py").is_file():
        return
    spec = importlib.util.spec_from_file_location(
        "mlservices.kernels", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["mlservices.kernels"] = module
    spec.loader.exec_module(module)


if AVAILABLE:
    _map_source_kernels()
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
