"""The public op API: the only way the rest of mlservices reaches a kernel.

Every op validates its arguments (before allocating), then runs the implementation chosen by
``backend``: ``None`` picks the fastest available for the tensor's device, or name one of
``triton``, ``cuda``, ``cpu``, ``reference``. ``available_backends()`` says what this install has.

Example:
    >>> import torch, mlservices.ops as ops
    >>> x = torch.randn(7, 384)
    >>> cu = torch.tensor([0, 3, 7], dtype=torch.int32)
    >>> ops.pool(x, cu, "mean", normalize=True).shape
    torch.Size([2, 384])
"""

from __future__ import annotations

import torch

from mlservices.ops import _validate, reference
from mlservices.ops._dispatch import BACKENDS, OPS, available_backends, register, resolve
from mlservices.ops.reference import POOL_MODES

__all__ = [
    "BACKENDS",
    "OPS",
    "POOL_MODES",
    "available_backends",
    "bias_gelu",
    "bias_gelu_",
    "l2_normalize",
    "layer_norm",
    "pack",
    "pool",
    "unpack",
    "varlen_attention",
]

register(
    "reference",
    ("cpu", "cuda"),
    {
        "pack": reference.pack_ref,
        "unpack": reference.unpack_ref,
        "pool": reference.pool_ref,
        "l2_normalize": reference.l2_normalize_ref,
        "layer_norm": reference.layer_norm_ref,
        "varlen_attention": reference.varlen_attention_ref,
        "bias_gelu": reference.bias_gelu_ref,
    },
)


def pack(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, *, backend: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Padded [B, L] token ids to one packed stream of real tokens.

    Args:
        input_ids: [B, L] integer ids.
        attention_mask: [B, L], nonzero where a token is real (any padding side).
        backend: None (automatic) or a backend name.

    Returns:
        ``(packed [T], cu_seqlens [B + 1] int32, max_seqlen, indices [T] int64)``; ``indices``
        gathers the real tokens from the flattened [B * L] input.
    """
    _validate.tensor("pack", "input_ids", input_ids)
    _validate.tensor("pack", "attention_mask", attention_mask)
    if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
        raise _validate.ValidationError(
            f"mlservices.pack: input_ids and attention_mask must both be [B, L], got "
            f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    _validate.same_device("pack", input_ids=input_ids, attention_mask=attention_mask)
    return resolve("pack", input_ids.device, backend)(input_ids, attention_mask)


def unpack(
    x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int, *, backend: str | None = None
) -> torch.Tensor:
    """Packed [T, ...] back to padded [B, max_seqlen, ...], zero-filled.

    Raises:
        ValidationError: bad ``cu_seqlens``, or a segment longer than ``max_seqlen``.
    """
    _validate.tensor("unpack", "x", x)
    _validate.cu_seqlens("unpack", cu_seqlens, x.shape[0])
    _validate.same_device("unpack", x=x, cu_seqlens=cu_seqlens)
    _validate.max_seqlen("unpack", cu_seqlens, max_seqlen)
    return resolve("unpack", x.device, backend)(x, cu_seqlens, max_seqlen)


def pool(
    x: torch.Tensor,
    cu_seqlens: torch.Tensor,
    mode: str = "mean",
    normalize: bool = False,
    eps: float = 1e-12,
    *,
    backend: str | None = None,
    check_inputs: bool = True,
) -> torch.Tensor:
    """Pool each segment of a packed [T, H] stream to one row: [B, H].

    Args:
        x: [T, H] float; rows may be strided, the last dimension must be contiguous.
        cu_seqlens: [B + 1] int32 segment offsets.
        mode: ``mean``, ``cls`` (first token), ``last`` or ``max``. An empty segment gives zeros.
        normalize: L2-normalise each pooled row in the same pass.
        eps: lower bound of the norm when normalising (a zero row stays zero).
        backend: None (automatic) or a backend name.
        check_inputs: validate ``cu_seqlens`` values (reads them; skip only for trusted input).

    Returns:
        [B, H] in x's dtype, accumulated in float32.
    """
    _validate.rows("pool", "x", x)
    _validate.choice("pool", "mode", mode, POOL_MODES)
    _validate.cu_seqlens("pool", cu_seqlens, x.shape[0], check_inputs)
    _validate.same_device("pool", x=x, cu_seqlens=cu_seqlens)
    return resolve("pool", x.device, backend)(x, cu_seqlens, mode, normalize, eps)


def l2_normalize(
    x: torch.Tensor, eps: float = 1e-12, *, backend: str | None = None
) -> torch.Tensor:
    """Rows of [N, H] to unit L2 length, ``x / max(||x||, eps)``; a zero row stays zero."""
    _validate.rows("l2_normalize", "x", x)
    return resolve("l2_normalize", x.device, backend)(x, eps)


def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-12,
    residual: torch.Tensor | None = None,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """LayerNorm over the last dim of [T, H] ``x`` (+ ``residual``), float32 statistics.

    Args:
        x: [T, H]; rows may be strided, the last dimension must be contiguous.
        weight, bias: [H].
        eps: added to the variance.
        residual: optional [T, H] added to x before normalising (the fused residual add).

    Returns:
        [T, H] in x's dtype. Neither x nor residual is written.
    """
    _validate.rows("layer_norm", "x", x)
    hidden = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        _validate.tensor("layer_norm", name, t)
        if t.shape != (hidden,):
            raise _validate.ValidationError(
                f"mlservices.layer_norm: {name} must be [{hidden}], got {tuple(t.shape)}"
            )
        if t.dtype not in _validate.FLOAT_DTYPES:
            raise _validate.ValidationError(
                f"mlservices.layer_norm: {name} must be a float tensor, got {t.dtype}"
            )
    _validate.same_device("layer_norm", x=x, weight=weight, bias=bias)
    if residual is not None:
        _validate.rows("layer_norm", "residual", residual)
        if residual.shape != x.shape or residual.dtype != x.dtype:
            raise _validate.ValidationError(
                f"mlservices.layer_norm: residual must match x ({tuple(x.shape)}, {x.dtype}), "
                f"got ({tuple(residual.shape)}, {residual.dtype})"
            )
        _validate.same_device("layer_norm", x=x, residual=residual)
    return resolve("layer_norm", x.device, backend)(x, weight, bias, eps, residual)


GELU_APPROXIMATIONS = ("none", "tanh")


def _check_bias_gelu(op: str, x: torch.Tensor, bias: torch.Tensor, approximate: str) -> None:
    _validate.rows(op, "x", x)
    _validate.rows(op, "bias", bias, ndim=1)
    if bias.shape != (x.shape[1],):
        raise _validate.ValidationError(
            f"mlservices.{op}: bias must be [{x.shape[1]}], got {tuple(bias.shape)}",
            argument="bias",
        )
    _validate.choice(op, "approximate", approximate, GELU_APPROXIMATIONS)
    _validate.same_device(op, x=x, bias=bias)


def bias_gelu(
    x: torch.Tensor, bias: torch.Tensor, approximate: str = "none", *, backend: str | None = None
) -> torch.Tensor:
    """GELU(x + bias) over [T, N]: the bias add and activation after a bias-free matmul.

    Args:
        x: [T, N] float; rows may be strided, the last dimension must be contiguous.
        bias: [N], in x's dtype or float32.
        approximate: ``none`` (erf, as ``F.gelu``) or ``tanh``.
        backend: None (automatic) or a backend name.

    Returns:
        A new [T, N] tensor in x's dtype, computed in float32 (float64 for float64). x is not
        written; see ``bias_gelu_`` for the in-place form.

    Example:
        >>> h = torch.randn(5, 1536) @ torch.randn(1536, 1536)
        >>> bias_gelu(h, torch.zeros(1536)).shape
        torch.Size([5, 1536])
    """
    _check_bias_gelu("bias_gelu", x, bias, approximate)
    return resolve("bias_gelu", x.device, backend)(x, bias, approximate, False)


def bias_gelu_(
    x: torch.Tensor, bias: torch.Tensor, approximate: str = "none", *, backend: str | None = None
) -> torch.Tensor:
    """In-place ``bias_gelu``: writes GELU(x + bias) over x and returns x.

    Only for a buffer the caller owns (a matmul output, say): no copy and no second [T, N] pass.
    Arguments as ``bias_gelu``; rows of x may be strided, only its [T, N] elements are written.
    """
    _check_bias_gelu("bias_gelu_", x, bias, approximate)
    return resolve("bias_gelu", x.device, backend)(x, bias, approximate, True)


def varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float | None = None,
    *,
    backend: str | None = None,
    check_inputs: bool = True,
) -> torch.Tensor:
    """Bidirectional attention restricted to each segment of a packed stream.

    Args:
        q, k, v: [T, heads, head_dim]; the last dimension must be contiguous.
        cu_seqlens: [B + 1] int32 segment offsets; no token attends outside its segment.
        max_seqlen: the longest segment (a bound for block sizes).
        scale: softmax scale, default ``head_dim ** -0.5``.

    Returns:
        [T, heads, head_dim] in q's dtype; softmax in float32.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _validate.rows("varlen_attention", name, t, ndim=3)
    if not (q.shape == k.shape == v.shape) or not (q.dtype == k.dtype == v.dtype):
        raise _validate.ValidationError(
            f"mlservices.varlen_attention: q, k, v must share one shape and dtype, got "
            f"{tuple(q.shape)} {q.dtype}, {tuple(k.shape)} {k.dtype}, {tuple(v.shape)} {v.dtype}"
        )
    _validate.cu_seqlens("varlen_attention", cu_seqlens, q.shape[0], check_inputs)
    if check_inputs:
        _validate.max_seqlen("varlen_attention", cu_seqlens, max_seqlen)
    _validate.same_device("varlen_attention", q=q, k=k, v=v, cu_seqlens=cu_seqlens)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    impl = resolve("varlen_attention", q.device, backend)
    return impl(q, k, v, cu_seqlens, max_seqlen, scale)


def _load_compiled_backends() -> None:
    """Register the C++ extension and Triton backends when they import."""
    from mlservices.ops import (
        _cpp,  # noqa: F401  (registers cpu/cuda when _C is built)
        _triton,  # noqa: F401  (registers triton when importable)
    )


_load_compiled_backends()
