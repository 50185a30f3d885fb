"""Block sizes, warp counts and launcher checks shared by every Triton kernel in this package.

Every launcher picks its tile through ``row_tile`` (memory-bound kernels) or ``attention_tile``
(varlen attention), so the choices below are made, and explained, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from mlservices.errors import ValidationError

# Element types the kernels load and store; accumulation is always float32.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# The widest row one program holds in registers: 16384 float32 accumulators spread over 16 warps
# is 32 per thread, which still leaves room for the loaded tile without spilling.
MAX_BLOCK_COLS = 16384

# Elements per memory-bound tile. 4096 elements is 32 per thread at 4 warps: four 16-byte vector
# loads per thread in fp16/bf16 (eight in fp32), enough bytes in flight per SM to cover HBM
# latency without the register pressure that would cut occupancy.
# TODO: sweep 2048/4096/8192 against copy bandwidth on an H200; unblocked by a GPU run.
TILE_ELEMENTS = 4096

# At most this many rows share one program; more would leave too few programs for small batches.
MAX_BLOCK_ROWS = 32

# Head dimensions the attention kernel is built and tested for (BLOCK_D = head_dim).
ATTENTION_HEAD_DIMS = (32, 64, 128)


@dataclass(frozen=True)
class RowTile:
    """A [block_rows, block_cols] tile of a row-major [n_rows, n_cols] tensor."""

    block_rows: int
    block_cols: int
    num_warps: int


@dataclass(frozen=True)
class AttentionTile:
    """Query block x key block of the flash-attention loop, and its launch settings."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


def row_tile(op: str, n_cols: int, max_block_cols: int | None = None) -> RowTile:
    """The tile a memory-bound launcher uses for rows of ``n_cols`` elements.

    Args:
        op: the op name, for the error message.
        n_cols: row length in elements.
        max_block_cols: split rows into column blocks of at most this width (a power of two);
            None keeps a whole row in one program (needed when a row is reduced).

    Raises:
        ValidationError: a whole row is wider than ``MAX_BLOCK_COLS``.
    """
    block_cols = triton.next_power_of_2(max(n_cols, 1))
    if max_block_cols is not None:
        block_cols = min(block_cols, max_block_cols)
    elif block_cols > MAX_BLOCK_COLS:
        raise ValidationError(
            f"mlservices.{op}: the triton backend holds rows of at most {MAX_BLOCK_COLS} "
            f"elements, got {n_cols}",
            hint="use another backend for wider rows (see mlservices.ops.available_backends())",
            argument="x",
        )

    # Fill the tile with rows when a row is short, so each program still moves TILE_ELEMENTS.
    block_rows = max(1, min(MAX_BLOCK_ROWS, TILE_ELEMENTS // block_cols))

    # One warp per 1024 elements: 32 per thread, from 1 warp (tiny rows) up to 16 (16384-wide).
    num_warps = max(1, min(16, block_rows * block_cols // 1024))
    return RowTile(block_rows, block_cols, num_warps)


def attention_tile(head_dim: int, max_seqlen: int, dtype: torch.dtype) -> AttentionTile:
    """Tile sizes of the varlen attention kernel for one head dim, longest segment and dtype.

    Embedding batches are short (tens of tokens), so the query block shrinks to the longest
    segment instead of padding every segment to 128 queries. Sizes and warp counts are chosen so
    that every variant compiles for sm_90 without register spills (cuobjdump -res-usage; the
    compile test asserts it): 16-bit inputs take wgmma tiles up to 128 x 64, with 8 warps once
    the query block x head dim reaches 4096 and two pipeline stages for 128-wide heads (three
    spill). float32 inputs run exact ("ieee") products on the FMA units, whose operands live in
    registers, so their tiles stop at 64 x 16 (64 x 32 already spills at head dim 64).
    """
    block_m = min(128, max(16, triton.next_power_of_2(max(max_seqlen, 1))))
    if dtype == torch.float32:
        block_m = min(block_m, 64)
        num_warps = 8 if block_m >= 32 else 4
        return AttentionTile(block_m, 16, num_warps, num_stages=2)
    block_n = min(64, block_m)
    num_warps = 8 if block_m * head_dim >= 4096 else 4
    num_stages = 2 if head_dim == 128 else 3
    # TODO: tune block_n / num_stages per head dim against torch's flash varlen kernel and padded
    # SDPA on an H200 (ragged MiniLM-sized batches); unblocked by a GPU run.
    return AttentionTile(block_m, block_n, num_warps, num_stages)


def check_dtype(op: str, name: str, t: torch.Tensor) -> None:
    """The kernels load float32, float16 or bfloat16; float64 stays on the reference."""
    if t.dtype not in KERNEL_DTYPES:
        raise ValidationError(
            f"mlservices.{op}: the triton backend takes float32, float16 or bfloat16 {name}, "
            f"got {t.dtype}",
            hint="use backend='reference' for float64",
            argument=name,
        )


def check_head_dim(op: str, head_dim: int) -> None:
    if head_dim not in ATTENTION_HEAD_DIMS:
        raise ValidationError(
            f"mlservices.{op}: the triton backend supports head_dim in "
            f"{', '.join(map(str, ATTENTION_HEAD_DIMS))}, got {head_dim}",
            hint="use backend='reference' for other head sizes",
            argument="q",
        )
