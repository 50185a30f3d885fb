"""LayerNorm over the last dimension with a fused residual add, float32 statistics.

``h = x (+ residual)``, ``out = (h - mean(h)) / sqrt(var(h) + eps) * weight + bias``; the sum is
formed in float32 and never rounded to x's dtype. Reference:
``mlservices.ops.reference.layer_norm_ref``. Registered as ``mlservices_triton::layer_norm``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mlservices.errors import ValidationError

from ._utils import check_dtype, row_tile


@triton.jit
def _layer_norm_kernel(
    x_ptr,  # [n_rows, n_cols], rows stride_x_row apart
    residual_ptr,  # [n_rows, n_cols], rows stride_residual_row apart; read if HAS_RESIDUAL
    weight_ptr,  # [n_cols]
    bias_ptr,  # [n_cols]
    out_ptr,  # [n_rows, n_cols], contiguous
    n_rows,
    n_cols,
    stride_x_row,
    stride_residual_row,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Normalise BLOCK_ROWS rows, each held whole in registers."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.arange(0, BLOCK_COLS)
    col_mask = cols < n_cols
    mask = (rows[:, None] < n_rows) & col_mask[None, :]

    # Load x, add the residual, both widened to float32.
    h = tl.load(x_ptr + rows[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0)
    h = h.to(tl.float32)
    if HAS_RESIDUAL:
        residual_ptrs = residual_ptr + rows[:, None] * stride_residual_row + cols[None, :]
        h += tl.load(residual_ptrs, mask=mask, other=0.0).to(tl.float32)

    # Mean, then the variance of the centred values (two passes over registers, no cancellation).
    mean = tl.sum(h, axis=1) / n_cols
    centered = tl.where(mask, h - mean[:, None], 0.0)
    var = tl.sum(centered * centered, axis=1) / n_cols
    rstd = 1.0 / tl.sqrt(var + eps)

    # Scale and shift by the affine parameters.
    weight = tl.load(weight_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    bias = tl.load(bias_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    y = centered * rstd[:, None] * weight[None, :] + bias[None, :]

    # Store in the output dtype.
    out_ptrs = out_ptr + rows[:, None] * n_cols + cols[None, :]
    tl.store(out_ptrs, y.to(out_ptr.dtype.element_ty), mask=mask)


def _check_params(weight: torch.Tensor, bias: torch.Tensor) -> None:
    for name, t in (("weight", weight), ("bias", bias)):
        check_dtype("layer_norm", name, t)
        if t.stride(0) != 1 and t.numel() > 1:
            raise ValidationError(
                f"mlservices.layer_norm: {name} must be contiguous for the triton backend, got "
                f"stride {t.stride(0)}",
                hint=f"pass {name}.contiguous() (a parameter is contiguous already)",
                argument=name,
            )


@torch.library.custom_op("mlservices_triton::layer_norm", mutates_args=())
def layer_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """LayerNorm of [T, H] ``x`` (+ ``residual``), rows may be strided; out in x's dtype."""
    check_dtype("layer_norm", "x", x)
    if residual is not None:
        check_dtype("layer_norm", "residual", residual)
    _check_params(weight, bias)
    n_rows, n_cols = x.shape
    tile = row_tile("layer_norm", n_cols)

    out = torch.empty((n_rows, n_cols), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    # Without a residual, x stands in for the pointer the HAS_RESIDUAL=False kernel never reads.
    has_residual = residual is not None
    residual_arg = residual if has_residual else x
    grid = (triton.cdiv(n_rows, tile.block_rows),)
    _layer_norm_kernel[grid](
        x,
        residual_arg,
        weight,
        bias,
        out,
        n_rows,
        n_cols,
        x.stride(0),
        residual_arg.stride(0),
        eps,
        HAS_RESIDUAL=has_residual,
        BLOCK_ROWS=tile.block_rows,
        BLOCK_COLS=tile.block_cols,
        num_warps=tile.num_warps,
    )
    return out


@layer_norm.register_fake
def _layer_norm_fake(x, weight, bias, eps, residual=None):
    return x.new_empty(x.shape)
