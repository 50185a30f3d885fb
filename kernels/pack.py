"""Packing a padded batch into one stream of real tokens, and unpacking it again.

``pack``: padded [B, L] ids and mask to packed [T] ids, ``cu_seqlens`` [B + 1] int32,
``max_seqlen`` and ``indices`` [T] (positions of the real tokens in the flattened [B * L] input),
keeping each row's token order whatever the padding side. ``unpack``: packed [T, ...] back to
[B, max_seqlen, ...], zero-filled past each segment. Reference: ``pack_ref`` and ``unpack_ref``
in ``mlservices.ops.reference``. Registered as ``mlservices_triton::pack`` and ``::unpack``.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from mlservices.errors import ValidationError

from ._utils import row_tile

# Mask columns one program scans per step when counting or packing a row: a padded row is at
# most a few thousand tokens, so 1024 covers most rows in one step.
PACK_BLOCK_COLS = 1024


@triton.jit
def _row_lengths_kernel(
    mask_ptr,  # [n_seqs, seq_len], any integer or bool dtype; nonzero marks a real token
    seqlens_ptr,  # [n_seqs] int32, written
    seq_len,
    stride_mask_row,
    stride_mask_col,
    BLOCK_COLS: tl.constexpr,
):
    """Count the real tokens of one padded row."""
    row = tl.program_id(0).to(tl.int64)

    # Count nonzero mask entries, one block of columns at a time.
    count = tl.zeros([BLOCK_COLS], dtype=tl.int32)
    for col_start in range(0, seq_len, BLOCK_COLS):
        cols = col_start + tl.arange(0, BLOCK_COLS)
        mask_ptrs = mask_ptr + row * stride_mask_row + cols * stride_mask_col
        keep = tl.load(mask_ptrs, mask=cols < seq_len, other=0) != 0
        count += keep.to(tl.int32)

    tl.store(seqlens_ptr + row, tl.sum(count, axis=0))


@triton.jit
def _pack_rows_kernel(
    ids_ptr,  # [n_seqs, seq_len] token ids
    mask_ptr,  # [n_seqs, seq_len]; nonzero marks a real token
    cu_seqlens_ptr,  # [n_seqs + 1] int32 segment offsets
    packed_ptr,  # [n_tokens] token ids, written
    indices_ptr,  # [n_tokens] int64 flat positions, written
    seq_len,
    stride_ids_row,
    stride_ids_col,
    stride_mask_row,
    stride_mask_col,
    BLOCK_COLS: tl.constexpr,
):
    """Copy the real tokens of one padded row, in order, to its segment of the packed stream."""
    row = tl.program_id(0).to(tl.int64)
    dst = tl.load(cu_seqlens_ptr + row).to(tl.int64)

    for col_start in range(0, seq_len, BLOCK_COLS):
        cols = col_start + tl.arange(0, BLOCK_COLS)
        in_row = cols < seq_len

        # Which columns are real tokens, and each one's rank among them in this block.
        mask_ptrs = mask_ptr + row * stride_mask_row + cols * stride_mask_col
        keep = (tl.load(mask_ptrs, mask=in_row, other=0) != 0) & in_row
        keep_count = keep.to(tl.int32)
        rank = tl.cumsum(keep_count, axis=0) - keep_count

        # Scatter ids and flat positions to the packed stream.
        ids = tl.load(ids_ptr + row * stride_ids_row + cols * stride_ids_col, mask=keep)
        tl.store(packed_ptr + dst + rank, ids, mask=keep)
        tl.store(indices_ptr + dst + rank, row * seq_len + cols, mask=keep)

        dst += tl.sum(keep_count, axis=0)


@triton.jit
def _unpack_kernel(
    x_ptr,  # [n_tokens, n_cols], rows stride_x_row apart
    cu_seqlens_ptr,  # [n_seqs + 1] int32 segment offsets
    out_ptr,  # [n_seqs, max_seqlen, n_cols], contiguous
    max_seqlen,
    n_cols,
    stride_x_row,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Write BLOCK_ROWS padded positions of one segment: its rows, then zeros."""
    segment = tl.program_id(0).to(tl.int64)
    positions = tl.program_id(1) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)

    # The segment's rows; positions past its length are padding.
    start = tl.load(cu_seqlens_ptr + segment).to(tl.int64)
    end = tl.load(cu_seqlens_ptr + segment + 1).to(tl.int64)
    is_token = positions < end - start
    in_out = positions < max_seqlen

    # Copy one column block at a time; masked loads give the zero padding.
    out_rows = segment * max_seqlen + positions
    for col_start in range(0, n_cols, BLOCK_COLS):
        cols = col_start + tl.arange(0, BLOCK_COLS)
        col_mask = cols < n_cols
        x_ptrs = x_ptr + (start + positions)[:, None] * stride_x_row + cols[None, :]
        values = tl.load(x_ptrs, mask=is_token[:, None] & col_mask[None, :], other=0)
        out_ptrs = out_ptr + out_rows[:, None] * n_cols + cols[None, :]
        tl.store(out_ptrs, values, mask=in_out[:, None] & col_mask[None, :])


def _check_integer(name: str, t: torch.Tensor) -> None:
    if t.is_floating_point() or t.is_complex():
        raise ValidationError(
            f"mlservices.pack: {name} must be an integer or bool tensor, got {t.dtype}",
            argument=name,
        )


@torch.library.custom_op("mlservices_triton::pack", mutates_args=())
def pack(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Padded [B, L] ids to ``(packed [T], cu_seqlens [B + 1] int32, max_seqlen, indices [T])``."""
    _check_integer("input_ids", input_ids)
    _check_integer("attention_mask", attention_mask)
    n_seqs, seq_len = input_ids.shape
    device = input_ids.device

    # Count each row's real tokens into cu_seqlens[1:], then prefix-sum them into offsets.
    cu_seqlens = torch.zeros(n_seqs + 1, dtype=torch.int32, device=device)
    if n_seqs > 0 and seq_len > 0:
        _row_lengths_kernel[(n_seqs,)](
            attention_mask,
            cu_seqlens[1:],
            seq_len,
            attention_mask.stride(0),
            attention_mask.stride(1),
            BLOCK_COLS=PACK_BLOCK_COLS,
        )
    seqlens = cu_seqlens[1:].clone()
    torch.cumsum(seqlens, dim=0, out=cu_seqlens[1:])

    # One host sync for the two sizes the caller needs.
    n_tokens, max_seqlen = (
        torch.stack([cu_seqlens[-1], seqlens.max()]).tolist() if n_seqs > 0 else (0, 0)
    )

    packed = torch.empty(n_tokens, dtype=input_ids.dtype, device=device)
    indices = torch.empty(n_tokens, dtype=torch.int64, device=device)
    if n_tokens > 0:
        _pack_rows_kernel[(n_seqs,)](
            input_ids,
            attention_mask,
            cu_seqlens,
            packed,
            indices,
            seq_len,
            input_ids.stride(0),
            input_ids.stride(1),
            attention_mask.stride(0),
            attention_mask.stride(1),
            BLOCK_COLS=PACK_BLOCK_COLS,
        )
    return packed, cu_seqlens, max_seqlen, indices


@pack.register_fake
def _pack_fake(input_ids, attention_mask):
    ctx = torch.library.get_ctx()
    n_tokens = ctx.new_dynamic_size()
    max_seqlen = ctx.new_dynamic_size()
    packed = input_ids.new_empty(n_tokens)
    cu_seqlens = input_ids.new_empty(input_ids.shape[0] + 1, dtype=torch.int32)
    indices = input_ids.new_empty(n_tokens, dtype=torch.int64)
    return packed, cu_seqlens, max_seqlen, indices


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """[T, ...] as a [T, prod(...)] view with contiguous rows; never a copy."""
    n_cols = math.prod(x.shape[1:])
    try:
        return x.view(x.shape[0], n_cols)
    except RuntimeError:
        raise ValidationError(
            f"mlservices.unpack: the trailing dims of x must be viewable as one row for the "
            f"triton backend, got shape {tuple(x.shape)} with strides {x.stride()}",
            hint="pass x.contiguous() (no silent copy is made)",
            argument="x",
        ) from None


@torch.library.custom_op("mlservices_triton::unpack", mutates_args=())
def unpack(x: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
    """Packed [T, ...] to padded [B, max_seqlen, ...], zero-filled, in x's dtype."""
    if x.is_complex():
        raise ValidationError(
            f"mlservices.unpack: the triton backend takes real dtypes, got {x.dtype}",
            hint="use backend='reference'",
            argument="x",
        )
    rows = _as_rows(x)
    n_cols = rows.shape[1]
    n_seqs = cu_seqlens.shape[0] - 1
    # Whole rows are copied, never reduced, so split wide rows into 1024-column steps.
    tile = row_tile("unpack", n_cols, 1024)

    out = torch.empty((n_seqs, max_seqlen, *x.shape[1:]), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    grid = (n_seqs, triton.cdiv(max_seqlen, tile.block_rows))
    _unpack_kernel[grid](
        rows,
        cu_seqlens,
        out,
        max_seqlen,
        n_cols,
        rows.stride(0),
        BLOCK_ROWS=tile.block_rows,
        BLOCK_COLS=tile.block_cols,
        num_warps=tile.num_warps,
    )
    return out


@unpack.register_fake
def _unpack_fake(x, cu_seqlens, max_seqlen):
    return x.new_empty((cu_seqlens.shape[0] - 1, max_seqlen, *x.shape[1:]))
