"""The C++/CUDA extension backends (``cpu``, ``cuda``): torch.ops.mlservices.* plus fakes.

The schemas and CPU/CUDA implementations are registered by mlservices._C (csrc/bindings.cpp);
this module registers the fake (meta) implementations that let torch.compile trace them, and
tells the dispatcher which device types the build covers. Without the extension it registers
nothing and the reference backend serves.

The wrappers below have the call signatures of the reference ops (mlservices/ops/reference.py).
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


def _pack(input_ids, attention_mask):
    packed, cu_seqlens, indices = torch.ops.mlservices.pack(input_ids, attention_mask)
    # max_seqlen from the [B + 1] offsets: a small host-side reduction, no pass over the tokens.
    max_seqlen = int(torch.diff(cu_seqlens).max()) if cu_seqlens.numel() > 1 else 0
    return packed, cu_seqlens, max_seqlen, indices


def _unpack(x, cu_seqlens, max_seqlen):
    return torch.ops.mlservices.unpack(x, cu_seqlens, max_seqlen)


def _pool(x, cu_seqlens, mode="mean", normalize=False, eps=1e-12):
    return torch.ops.mlservices.segment_pool(x, cu_seqlens, mode, normalize, eps)


def _l2_normalize(x, eps=1e-12):
    return torch.ops.mlservices.l2_normalize(x, eps)


def _layer_norm(x, weight, bias, eps=1e-12, residual=None):
    return torch.ops.mlservices.layer_norm(x, weight, bias, eps, residual)


def _bias_gelu(x, bias, approximate="none", inplace=False):
    if inplace:
        torch.ops.mlservices.bias_gelu_(x, bias, approximate)
        return x
    return torch.ops.mlservices.bias_gelu(x, bias, approximate)


def _varlen_attention(q, k, v, cu_seqlens, max_seqlen, scale=None):
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    return torch.ops.mlservices.varlen_attention(q, k, v, cu_seqlens, max_seqlen, scale)


def _register_fakes() -> None:
    """Shapes and dtypes of every op's outputs, for FakeTensor / torch.compile tracing."""

    @torch.library.register_fake("mlservices::pack")
    def _pack_fake(input_ids, attention_mask):
        n_tokens = torch.library.get_ctx().new_dynamic_size()
        packed = input_ids.new_empty((n_tokens,))
        cu_seqlens = input_ids.new_empty((input_ids.shape[0] + 1,), dtype=torch.int32)
        indices = input_ids.new_empty((n_tokens,), dtype=torch.int64)
        return packed, cu_seqlens, indices

    @torch.library.register_fake("mlservices::unpack")
    def _unpack_fake(x, cu_seqlens, max_seqlen):
        return x.new_empty((cu_seqlens.shape[0] - 1, max_seqlen, *x.shape[1:]))

    @torch.library.register_fake("mlservices::segment_pool")
    def _segment_pool_fake(x, cu_seqlens, mode, normalize, eps):
        return x.new_empty((cu_seqlens.shape[0] - 1, x.shape[1]))

    @torch.library.register_fake("mlservices::l2_normalize")
    def _l2_normalize_fake(x, eps):
        return x.new_empty(x.shape)

    @torch.library.register_fake("mlservices::layer_norm")
    def _layer_norm_fake(x, weight, bias, eps, residual):
        return x.new_empty(x.shape)

    @torch.library.register_fake("mlservices::bias_gelu")
    def _bias_gelu_fake(x, bias, approximate):
        return x.new_empty(x.shape)

    @torch.library.register_fake("mlservices::bias_gelu_")
    def _bias_gelu_inplace_fake(x, bias, approximate):
        return None

    @torch.library.register_fake("mlservices::varlen_attention")
    def _varlen_attention_fake(q, k, v, cu_seqlens, max_seqlen, scale):
        return q.new_empty(q.shape)


if BUILD_INFO is not None:
    _register_fakes()
    impls = {
        "pack": _pack,
        "unpack": _unpack,
        "pool": _pool,
        "l2_normalize": _l2_normalize,
        "layer_norm": _layer_norm,
        "varlen_attention": _varlen_attention,
        "bias_gelu": _bias_gelu,
    }
    register("cpu", ("cpu",), impls)
    if BUILD_INFO.get("cuda"):
        # TODO: varlen_attention has no CUDA kernel (Triton covers it on GPUs) and bias_gelu none
        # yet (the reference serves on GPUs); a CUDA build registers the five ops csrc/cuda has.
        cuda_ops = set(impls) - {"varlen_attention", "bias_gelu"}
        register("cuda", ("cuda",), {k: impls[k] for k in sorted(cuda_ops)})
