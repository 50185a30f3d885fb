"""Bidirectional attention over the segments of a packed stream, flash-attention style.

For each segment b (rows ``cu_seqlens[b]:cu_seqlens[b + 1]``) and head h:
``out = softmax(q @ k^T * scale) @ v`` using only that segment's keys, computed block by block
with an online softmax (running max and sum in float32), so no [L, L] matrix is materialised and
no padding is computed. q, k and v may be strided views of one fused [T, 3 * hidden] QKV tensor.
Reference: ``mlservices.ops.reference.varlen_attention_ref``. Registered as
``mlservices_triton::varlen_attention``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._utils import attention_tile, check_dtype, check_head_dim

# Triton programs may span at most 65535 along grid axis 2; each loops over further q blocks.
MAX_QUERY_PROGRAMS = 65535


@triton.jit
def _attend_query_block(
    q_ptr,
    k_ptr,
    v_ptr,
    out_ptr,
    start,
    seq_len,
    query_start,
    head,
    stride_q_token,
    stride_q_head,
    stride_k_token,
    stride_k_head,
    stride_v_token,
    stride_v_head,
    stride_out_token,
    stride_out_head,
    qk_scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Attention of BLOCK_M queries of one segment and head over that segment's keys."""
    offs_m = query_start + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    query_mask = offs_m < seq_len

    # Load the query block once.
    q_ptrs = q_ptr + (start + offs_m)[:, None] * stride_q_token + head * stride_q_head
    q = tl.load(q_ptrs + offs_d[None, :], mask=query_mask[:, None], other=0.0)

    # Running row max, row sum and output accumulator of the online softmax, in float32.
    row_max = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    for key_start in range(0, seq_len, BLOCK_N):
        offs_n = key_start + tl.arange(0, BLOCK_N)
        key_mask = offs_n < seq_len

        # Scores of this key block (in log2 units); keys past the segment end never count.
        k_ptrs = k_ptr + (start + offs_n)[:, None] * stride_k_token + head * stride_k_head
        k = tl.load(k_ptrs + offs_d[None, :], mask=key_mask[:, None], other=0.0)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale
        scores = tl.where(key_mask[None, :], scores, float("-inf"))

        # Rescale what was accumulated so far to the new row max.
        new_max = tl.maximum(row_max, tl.max(scores, axis=1))
        probs = tl.math.exp2(scores - new_max[:, None])
        correction = tl.math.exp2(row_max - new_max)
        row_sum = row_sum * correction + tl.sum(probs, axis=1)
        row_max = new_max

        # Accumulate probs @ v, with probs in v's dtype for the tensor cores.
        v_ptrs = v_ptr + (start + offs_n)[:, None] * stride_v_token + head * stride_v_head
        v = tl.load(v_ptrs + offs_d[None, :], mask=key_mask[:, None], other=0.0)
        acc = acc * correction[:, None]
        acc += tl.dot(probs.to(v.dtype), v, input_precision=DOT_PRECISION)

    # Normalise by the softmax sum and store the queries that exist.
    out = acc / row_sum[:, None]
    out_ptrs = out_ptr + (start + offs_m)[:, None] * stride_out_token + head * stride_out_head
    tl.store(out_ptrs + offs_d[None, :], out.to(out_ptr.dtype.element_ty), mask=query_mask[:, None])


@triton.jit
def _varlen_attention_kernel(
    q_ptr,  # [n_tokens, n_heads, HEAD_DIM], strides (stride_q_token, stride_q_head, 1)
    k_ptr,  # [n_tokens, n_heads, HEAD_DIM], strides (stride_k_token, stride_k_head, 1)
    v_ptr,  # [n_tokens, n_heads, HEAD_DIM], strides (stride_v_token, stride_v_head, 1)
    cu_seqlens_ptr,  # [n_segments + 1] int32 segment offsets
    out_ptr,  # [n_tokens, n_heads, HEAD_DIM], strides (stride_out_token, stride_out_head, 1)
    stride_q_token,
    stride_q_head,
    stride_k_token,
    stride_k_head,
    stride_v_token,
    stride_v_head,
    stride_out_token,
    stride_out_head,
    scale,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    DOT_PRECISION: tl.constexpr,  # "ieee" for float32 inputs; 16-bit inputs use tensor cores
):
    """Grid (segment, head, query block): attend every BLOCK_M-query block this program owns."""
    segment = tl.program_id(0).to(tl.int64)
    head = tl.program_id(1).to(tl.int64)
    query_program = tl.program_id(2)

    # The segment's rows.
    start = tl.load(cu_seqlens_ptr + segment).to(tl.int64)
    seq_len = tl.load(cu_seqlens_ptr + segment + 1).to(tl.int64) - start

    # Fold log2(e) into the scale so the softmax runs on exp2.
    qk_scale = scale * 1.4426950408889634

    # Query blocks query_program, query_program + n_programs, ...: usually exactly one, but a
    # max_seqlen below the true longest segment must not leave queries unwritten.
    query_step = tl.num_programs(2) * BLOCK_M
    for query_start in range(query_program * BLOCK_M, seq_len, query_step):
        _attend_query_block(
            q_ptr,
            k_ptr,
            v_ptr,
            out_ptr,
            start,
            seq_len,
            query_start,
            head,
            stride_q_token,
            stride_q_head,
            stride_k_token,
            stride_k_head,
            stride_v_token,
            stride_v_head,
            stride_out_token,
            stride_out_head,
            qk_scale,
            BLOCK_M,
            BLOCK_N,
            HEAD_DIM,
            DOT_PRECISION,
        )


def dot_precision(dtype: torch.dtype) -> str:
    """float32 inputs keep float32 products ("ieee"): tf32 would miss the fp32 tolerance.

    TODO: measure "tf32x3" (fp32-level accuracy on tensor cores) against "ieee" on an H200 and
    switch if it holds the fp32 tolerance; unblocked by a GPU run.
    """
    return "ieee" if dtype == torch.float32 else "tf32"


@torch.library.custom_op("mlservices_triton::varlen_attention", mutates_args=())
def varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float,
) -> torch.Tensor:
    """Attention within each segment; q, k, v [T, heads, head_dim] (strided views allowed)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_dtype("varlen_attention", name, t)
    n_tokens, n_heads, head_dim = q.shape
    check_head_dim("varlen_attention", head_dim)
    n_segments = cu_seqlens.shape[0] - 1
    tile = attention_tile(head_dim, max_seqlen, q.dtype)

    out = torch.empty((n_tokens, n_heads, head_dim), dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    query_programs = min(MAX_QUERY_PROGRAMS, max(1, triton.cdiv(max_seqlen, tile.block_m)))
    grid = (n_segments, n_heads, query_programs)
    _varlen_attention_kernel[grid](
        q,
        k,
        v,
        cu_seqlens,
        out,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        out.stride(0),
        out.stride(1),
        scale,
        BLOCK_M=tile.block_m,
        BLOCK_N=tile.block_n,
        HEAD_DIM=head_dim,
        DOT_PRECISION=dot_precision(q.dtype),
        num_warps=tile.num_warps,
        num_stages=tile.num_stages,
    )
    return out


@varlen_attention.register_fake
def _varlen_attention_fake(q, k, v, cu_seqlens, max_seqlen, scale):
    return q.new_empty(q.shape)
