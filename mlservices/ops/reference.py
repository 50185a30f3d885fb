"""Plain-torch reference of every op, written for clarity rather than speed.

Every other backend is tested against these (in float64 on fresh random ragged inputs). They
accumulate in float32 (or float64 when given float64) and return the input dtype. Segments are
described by ``cu_seqlens`` [B + 1] int32: segment b is rows ``cu_seqlens[b]:cu_seqlens[b+1]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOL_MODES = ("mean", "cls", "last", "max")


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _segments(cu_seqlens: torch.Tensor) -> list[tuple[int, int]]:
    bounds = cu_seqlens.tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def pack_ref(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Padded [B, L] ids to a packed stream of the real tokens.

    Returns:
        (packed [T], cu_seqlens [B + 1] int32, max_seqlen, indices [T] int64) where ``indices``
        are the positions of the real tokens in the flattened [B * L] input.
    """
    mask = attention_mask.bool()
    seqlens = mask.sum(dim=1, dtype=torch.int32)
    indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
    packed = input_ids.flatten()[indices]
    cu_seqlens = F.pad(torch.cumsum(seqlens, dim=0, dtype=torch.int32), (1, 0))
    max_seqlen = int(seqlens.max().item()) if seqlens.numel() else 0
    return packed, cu_seqlens, max_seqlen, indices


def unpack_ref(x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
    """Packed [T, ...] back to padded [B, max_seqlen, ...], zero-filled past each segment."""
    n_seqs = cu_seqlens.numel() - 1
    out = x.new_zeros((n_seqs, max_seqlen, *x.shape[1:]))
    for b, (start, end) in enumerate(_segments(cu_seqlens)):
        out[b, : end - start] = x[start:end]
    return out


def l2_normalize_ref(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows of [N, H] to unit length: x / max(||x||, eps). A zero row stays zero."""
    acc = x.to(_acc_dtype(x.dtype))
    norm = torch.linalg.vector_norm(acc, dim=-1, keepdim=True)
    return (acc / norm.clamp_min(eps)).to(x.dtype)


def pool_ref(
    x: torch.Tensor,
    cu_seqlens: torch.Tensor,
    mode: str = "mean",
    normalize: bool = False,
    eps: float = 1e-12,
) -> torch.Tensor:
    """[T, H] to [B, H]: mean / first (cls) / last / max over each segment; empty -> zeros."""
    acc_dtype = _acc_dtype(x.dtype)
    rows = []
    for start, end in _segments(cu_seqlens):
        segment = x[start:end].to(acc_dtype)
        if end == start:
            rows.append(torch.zeros(x.shape[1], dtype=acc_dtype, device=x.device))
        elif mode == "mean":
            rows.append(segment.mean(dim=0))
        elif mode == "cls":
            rows.append(segment[0])
        elif mode == "last":
            rows.append(segment[-1])
        else:
            rows.append(segment.amax(dim=0))
    out = torch.stack(rows) if rows else x.new_zeros((0, x.shape[1]), dtype=acc_dtype)
    if normalize:
        out = l2_normalize_ref(out, eps)
    return out.to(x.dtype)


def layer_norm_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-12,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """LayerNorm over the last dim of x (+ residual), statistics in float32."""
    acc_dtype = _acc_dtype(x.dtype)
    h = x.to(acc_dtype)
    if residual is not None:
        h = h + residual.to(acc_dtype)
    out = F.layer_norm(h, (h.shape[-1],), weight.to(acc_dtype), bias.to(acc_dtype), eps)
    return out.to(x.dtype)


def bias_gelu_ref(
    x: torch.Tensor, bias: torch.Tensor, approximate: str = "none", inplace: bool = False
) -> torch.Tensor:
    """GELU(x + bias) on [T, N] in float32; ``inplace`` writes the result over x and returns x."""
    acc_dtype = _acc_dtype(x.dtype)
    out = F.gelu(x.to(acc_dtype) + bias.to(acc_dtype), approximate=approximate).to(x.dtype)
    return x.copy_(out) if inplace else out


def varlen_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Bidirectional attention within each segment; q, k, v, out: [T, heads, head_dim]."""
    del max_seqlen  # the segments carry their own lengths
    acc_dtype = _acc_dtype(q.dtype)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    out = torch.zeros_like(q, dtype=acc_dtype)
    for start, end in _segments(cu_seqlens):
        if end == start:
            continue
        qs, ks, vs = (t[start:end].to(acc_dtype).transpose(0, 1) for t in (q, k, v))
        probs = torch.softmax((qs @ ks.transpose(1, 2)) * scale, dim=-1)
        out[start:end] = (probs @ vs).transpose(0, 1)
    return out.to(q.dtype)
