"""Row-wise L2 normalisation: ``out = x / max(||x||_2, eps)``; a zero row stays zero.

Reference: ``mlservices.ops.reference.l2_normalize_ref``. Registered as the torch custom op
``mlservices_triton::l2_normalize``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._utils import check_dtype, row_tile


@triton.jit
def _l2_normalize_kernel(
    x_ptr,  # [n_rows, n_cols], rows stride_x_row apart
    out_ptr,  # [n_rows, n_cols], contiguous
    n_rows,
    n_cols,
    stride_x_row,
    eps,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Normalise BLOCK_ROWS rows, each held whole in registers."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_COLS)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)

    # Load the tile and widen it to float32.
    x = tl.load(x_ptr + rows[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0)
    x = x.to(tl.float32)

    # Norm of each row; clamping it at eps keeps a zero row at zero (0 / eps), never NaN.
    norm = tl.sqrt(tl.sum(x * x, axis=1))
    y = x / tl.maximum(norm, eps)[:, None]

    # Store in the output dtype.
    out_ptrs = out_ptr + rows[:, None] * n_cols + cols[None, :]
    tl.store(out_ptrs, y.to(out_ptr.dtype.element_ty), mask=mask)


@torch.library.custom_op("mlservices_triton::l2_normalize", mutates_args=())
def l2_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Rows of [N, H] ``x`` (row-strided allowed) to unit length, in x's dtype."""
    check_dtype("l2_normalize", "x", x)
    n_rows, n_cols = x.shape
    tile = row_tile("l2_normalize", n_cols)

    out = torch.empty((n_rows, n_cols), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    grid = (triton.cdiv(n_rows, tile.block_rows),)
    _l2_normalize_kernel[grid](
        x,
        out,
        n_rows,
        n_cols,
        x.stride(0),
        eps,
        BLOCK_ROWS=tile.block_rows,
        BLOCK_COLS=tile.block_cols,
        num_warps=tile.num_warps,
    )
    return out


@l2_normalize.register_fake
def _l2_normalize_fake(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x.new_empty(x.shape)
