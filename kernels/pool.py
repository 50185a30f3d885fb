"""Segment pooling of a packed [T, H] stream to [B, H], with an optional fused L2 normalise.

Segment b is rows ``cu_seqlens[b]:cu_seqlens[b + 1]``; ``mean`` averages it, ``cls`` takes its
first row, ``last`` its last row, ``max`` the elementwise maximum; an empty segment gives zeros.
Accumulation is float32. Reference: ``mlservices.ops.reference.pool_ref``. Registered as
``mlservices_triton::pool``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._utils import check_dtype, row_tile

# Column block when each program pools a slice of the hidden size (no normalisation): 128
# elements is 256 contiguous bytes per row in fp16, and a 384-wide hidden size splits into three
# programs per segment, so small batches still spread over the SMs.
# TODO: a batch of very few long segments leaves SMs idle (one program per segment and column
# block); split rows too and combine, measured on an H200; unblocked by a GPU run.
SPLIT_BLOCK_COLS = 128


@triton.jit
def _segment_sum(
    x_ptr,
    start,
    end,
    cols,
    col_mask,
    stride_x_row,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Float32 column sums of rows [start, end)."""
    acc = tl.zeros([BLOCK_ROWS, BLOCK_COLS], dtype=tl.float32)
    for row_start in range(start, end, BLOCK_ROWS):
        rows = row_start + tl.arange(0, BLOCK_ROWS)
        mask = (rows[:, None] < end) & col_mask[None, :]
        tile = tl.load(x_ptr + rows[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0)
        acc += tile.to(tl.float32)
    return tl.sum(acc, axis=0)


@triton.jit
def _segment_max(
    x_ptr,
    start,
    end,
    cols,
    col_mask,
    stride_x_row,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Float32 column maxima of rows [start, end); zeros when empty and in masked columns."""
    acc = tl.full([BLOCK_ROWS, BLOCK_COLS], float("-inf"), dtype=tl.float32)
    for row_start in range(start, end, BLOCK_ROWS):
        rows = row_start + tl.arange(0, BLOCK_ROWS)
        mask = (rows[:, None] < end) & col_mask[None, :]
        tile = tl.load(
            x_ptr + rows[:, None] * stride_x_row + cols[None, :], mask=mask, other=float("-inf")
        )
        acc = tl.maximum(acc, tile.to(tl.float32))
    return tl.where(col_mask & (end > start), tl.max(acc, axis=0), 0.0)


@triton.jit
def _segment_row(x_ptr, row, has_rows, cols, col_mask, stride_x_row):
    """One row of the segment in float32 (first or last); zeros when the segment is empty."""
    values = tl.load(x_ptr + row * stride_x_row + cols, mask=col_mask & has_rows, other=0.0)
    return values.to(tl.float32)


@triton.jit
def _pool_kernel(
    x_ptr,  # [n_tokens, n_cols], rows stride_x_row apart
    cu_seqlens_ptr,  # [n_segments + 1] int32 segment offsets
    out_ptr,  # [n_segments, n_cols], contiguous
    n_cols,
    stride_x_row,
    eps,
    MODE: tl.constexpr,  # "mean", "cls", "last" or "max"
    NORMALIZE: tl.constexpr,  # L2-normalise the pooled row (BLOCK_COLS covers the whole row)
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Pool one segment over one block of columns."""
    segment = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)
    col_mask = cols < n_cols

    # The segment's rows.
    start = tl.load(cu_seqlens_ptr + segment).to(tl.int64)
    end = tl.load(cu_seqlens_ptr + segment + 1).to(tl.int64)

    # Reduce the segment in float32, one mode per helper.
    if MODE == "mean":
        count = tl.maximum(end - start, 1).to(tl.float32)
        pooled = _segment_sum(
            x_ptr, start, end, cols, col_mask, stride_x_row, BLOCK_ROWS, BLOCK_COLS
        )
        pooled = pooled / count
    elif MODE == "max":
        pooled = _segment_max(
            x_ptr, start, end, cols, col_mask, stride_x_row, BLOCK_ROWS, BLOCK_COLS
        )
    elif MODE == "cls":
        pooled = _segment_row(x_ptr, start, end > start, cols, col_mask, stride_x_row)
    else:
        pooled = _segment_row(x_ptr, end - 1, end > start, cols, col_mask, stride_x_row)

    # Optionally scale the pooled row to unit length; a zero row stays zero.
    if NORMALIZE:
        norm = tl.sqrt(tl.sum(pooled * pooled, axis=0))
        pooled = pooled / tl.maximum(norm, eps)

    # Store in the output dtype.
    tl.store(out_ptr + segment * n_cols + cols, pooled.to(out_ptr.dtype.element_ty), mask=col_mask)


@torch.library.custom_op("mlservices_triton::pool", mutates_args=())
def pool(
    x: torch.Tensor, cu_seqlens: torch.Tensor, mode: str, normalize: bool, eps: float
) -> torch.Tensor:
    """Pool each segment of [T, H] ``x`` (row-strided allowed) to one row: [B, H] in x's dtype."""
    check_dtype("pool", "x", x)
    n_cols = x.shape[1]
    n_segments = cu_seqlens.shape[0] - 1
    # Normalising needs the whole pooled row in one program; otherwise split the columns.
    tile = row_tile("pool", n_cols, None if normalize else SPLIT_BLOCK_COLS)

    out = torch.empty((n_segments, n_cols), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    grid = (n_segments, triton.cdiv(n_cols, tile.block_cols))
    _pool_kernel[grid](
        x,
        cu_seqlens,
        out,
        n_cols,
        x.stride(0),
        eps,
        MODE=mode,
        NORMALIZE=normalize,
        BLOCK_ROWS=tile.block_rows,
        BLOCK_COLS=tile.block_cols,
        num_warps=tile.num_warps,
    )
    return out


@pool.register_fake
def _pool_fake(x, cu_seqlens, mode, normalize, eps):
    return x.new_empty((cu_seqlens.shape[0] - 1, x.shape[1]))
