"""The C++/CUDA extension backends (``cpu``, ``cuda``): torch.ops.mlservices.* plus fakes.

The schemas and CPU/CUDA implementations are registered by mlservices._C (csrc/bindings.cpp);
this module registers the fake (meta) implementations that let torch.compile trace them, and
tells the dispatcher which device types the build covers. Without the extension it registers
nothing and the reference backend serves.
"""

from __future__ import annotations

import logging

import torch

from mlservices.ops._dispatch import register

logger = logging.getLogger(__name__)

try:
    from mlservices import _C  # noqa: F401  (loads the TORCH_LIBRARY registrations)

    BUILD_INFO: dict | None = _C.build_info()
except ImportError as exc:  # the package must import and run without the extension
    BUILD_INFO = None
    IMPORT_ERROR: str | None = str(exc)
else:
    IMPORT_ERROR = None


def _pool(x, cu_seqlens, mode, normalize, eps):
    return torch.ops.mlservices.segment_pool(x, cu_seqlens, mode, normalize, eps)


if BUILD_INFO is not None:

    @torch.library.register_fake("mlservices::segment_pool")
    def _segment_pool_fake(x, cu_seqlens, mode, normalize, eps):
        return x.new_empty((cu_seqlens.shape[0] - 1, x.shape[1]))

    impls = {"pool": _pool}
    register("cpu", ("cpu",), impls)
    if BUILD_INFO.get("cuda"):
        register("cuda", ("cuda",), impls)
