"""The Triton backend against the float64 reference, through the public mlservices.ops API.

Without a GPU the kernels run on CPU tensors under TRITON_INTERPRET=1 (set by conftest), so
sizes stay small; with a GPU the same tests run on CUDA tensors. fp32 is held to
``kernel_cases.TOLERANCES``; fp16/bf16 to at most twice torch's own error in that dtype plus
atol (``assert_close_lowp``), where "torch's own" is the plain torch computation in that dtype.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_cases import (
    LENGTH_CASES,
    assert_close_to_ref,
    cu_seqlens_from,
    random_rows,
)

from mlservices import ops
from mlservices.errors import ValidationError
from mlservices.ops import reference

pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = DEVICE == "cpu"
if "triton" not in ops.available_backends()["pool"].get(DEVICE, []):
    pytest.skip(f"the triton backend is not registered for {DEVICE}", allow_module_level=True)

LOWP = (torch.float16, torch.bfloat16)
DTYPES = (torch.float32, *LOWP)

# triton 3.8's interpreter multiplies the raw uint16 storage of bfloat16 operands in tl.dot
# (InterpreterBuilder.create_dot converts only fp8; upstream triton-lang/triton#11584, "not
# supported yet"), so bf16 attention is checked on a GPU only. The other kernels widen bf16 to
# float32 before any arithmetic, which the interpreter does handle, and are checked here.
BF16_DOT_INTERPRETER_BUG = "triton interpreter: tl.dot on bfloat16 multiplies raw bits (#11584)"


def _check(out: torch.Tensor, ref64: torch.Tensor, torch_lowp=None) -> None:
    """fp32 against TOLERANCES; fp16/bf16 against twice torch's own error (+ atol)."""
    assert out.dtype != torch.float64 and out.shape == ref64.shape
    assert_close_to_ref(out, ref64, torch_lowp)


def _rows(n_rows: int, n_cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    return random_rows(n_rows, n_cols, dtype, seed, device=DEVICE)


def _strided_rows(n_rows: int, n_cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """[n_rows, n_cols] rows of a wider buffer: row stride n_cols + 37, last dim contiguous."""
    view = _rows(n_rows, n_cols + 37, dtype, seed)[:, 3 : 3 + n_cols]
    assert view.stride() == (n_cols + 37, 1)
    return view


def _segments(cu_seqlens: torch.Tensor) -> list[tuple[int, int]]:
    bounds = cu_seqlens.tolist()
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _torch_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """F.normalize in x's own dtype. In fp16 eps=1e-12 rounds to 0 and a zero row gives NaN;
    those rows are counted as torch getting 0 (its error elsewhere is what bounds ours)."""
    return torch.nan_to_num(F.normalize(x, dim=-1, eps=eps), nan=0.0)


# ---------------------------------------------------------------------------------------------
# pool


def _torch_pool(x, cu_seqlens, mode, normalize, eps=1e-12):
    """Plain torch pooling computed in x's own dtype."""
    rows = []
    for start, end in _segments(cu_seqlens):
        segment = x[start:end]
        if end == start:
            rows.append(x.new_zeros(x.shape[1]))
        elif mode == "mean":
            rows.append(segment.mean(dim=0))
        elif mode == "cls":
            rows.append(segment[0])
        elif mode == "last":
            rows.append(segment[-1])
        else:
            rows.append(segment.amax(dim=0))
    out = torch.stack(rows)
    return _torch_normalize(out, eps) if normalize else out


def _check_pool(x, cu, mode, normalize):
    out = ops.pool(x, cu, mode, normalize, backend="triton")
    ref = reference.pool_ref(x.double(), cu, mode, normalize)
    _check(out, ref, lambda: _torch_pool(x, cu, mode, normalize))


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("lengths", list(LENGTH_CASES), ids=list(LENGTH_CASES))
@pytest.mark.parametrize("mode", ops.POOL_MODES)
def test_pool_fp32_lengths(mode, lengths, normalize):
    cu = cu_seqlens_from(LENGTH_CASES[lengths], DEVICE)
    x = _rows(int(cu[-1]), 384, torch.float32, seed=1)
    _check_pool(x, cu, mode, normalize)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("dtype", LOWP, ids=str)
@pytest.mark.parametrize("mode", ops.POOL_MODES)
def test_pool_low_precision_odd_hidden(mode, dtype, normalize):
    cu = cu_seqlens_from(LENGTH_CASES["ragged"], DEVICE)
    x = _rows(int(cu[-1]), 1023, dtype, seed=2)
    _check_pool(x, cu, mode, normalize)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pool_max_all_negative(dtype):
    """Masked lanes and empty segments must not leak a 0 or -inf into a max of negatives."""
    cu = cu_seqlens_from([4, 0, 1, 70], DEVICE)
    x = -(_rows(int(cu[-1]), 200, dtype, seed=3).abs() + 1)
    out = ops.pool(x, cu, "max", backend="triton")
    assert (out[[0, 2, 3]] < 0).all() and (out[1] == 0).all()
    _check_pool(x, cu, "max", normalize=True)


@pytest.mark.parametrize("mode", ops.POOL_MODES)
def test_pool_row_strided(mode):
    cu = cu_seqlens_from(LENGTH_CASES["ragged"], DEVICE)
    x = _strided_rows(int(cu[-1]), 384, torch.float32, seed=4)
    _check_pool(x, cu, mode, normalize=True)


# ---------------------------------------------------------------------------------------------
# l2_normalize


@pytest.mark.parametrize("n_cols", [384, 1023])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_l2_normalize(dtype, n_cols):
    x = _rows(37, n_cols, dtype, seed=5)
    x[[0, 17, 36]] = 0
    out = ops.l2_normalize(x, backend="triton")
    assert (out[[0, 17, 36]] == 0).all(), "a zero row must stay zero (never NaN)"
    ref = reference.l2_normalize_ref(x.double())
    _check(out, ref, lambda: _torch_normalize(x))


def test_l2_normalize_row_strided():
    x = _strided_rows(21, 1023, torch.float32, seed=6)
    out = ops.l2_normalize(x, backend="triton")
    _check(out, reference.l2_normalize_ref(x.double()))


# ---------------------------------------------------------------------------------------------
# layer_norm


def _ln_params(n_cols: int, dtype: torch.dtype):
    weight = 1 + 0.1 * _rows(1, n_cols, dtype, seed=7)[0]
    bias = 0.1 * _rows(1, n_cols, dtype, seed=8)[0]
    return weight, bias


def _check_layer_norm(x, weight, bias, residual):
    eps = 1e-12
    out = ops.layer_norm(x, weight, bias, eps, residual, backend="triton")
    residual64 = None if residual is None else residual.double()
    ref = reference.layer_norm_ref(x.double(), weight.double(), bias.double(), eps, residual64)

    def torch_lowp():
        h = x if residual is None else x + residual
        return F.layer_norm(h, (x.shape[1],), weight, bias, eps)

    _check(out, ref, torch_lowp)


@pytest.mark.parametrize("with_residual", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize("n_cols", [384, 1023])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_layer_norm(dtype, n_cols, with_residual):
    x = 3 + 2 * _rows(29, n_cols, dtype, seed=9)
    residual = _rows(29, n_cols, dtype, seed=10) if with_residual else None
    _check_layer_norm(x, *_ln_params(n_cols, dtype), residual)


def test_layer_norm_row_strided():
    x = _strided_rows(19, 384, torch.float32, seed=11)
    residual = _strided_rows(19, 384, torch.float32, seed=12)
    _check_layer_norm(x, *_ln_params(384, torch.float32), residual)


# ---------------------------------------------------------------------------------------------
# varlen_attention


def _qkv(n_tokens: int, heads: int, head_dim: int, dtype: torch.dtype, seed: int):
    """q, k, v as strided views of one fused [T, 3 * hidden] QKV tensor, plus that tensor."""
    hidden = heads * head_dim
    qkv = _rows(n_tokens, 3 * hidden, dtype, seed)
    views = [
        qkv[:, i * hidden : (i + 1) * hidden].view(n_tokens, heads, head_dim) for i in range(3)
    ]
    return (*views, qkv)


def _torch_attention(q, k, v, cu_seqlens, scale):
    """Plain torch attention per segment, computed in q's own dtype."""
    out = torch.zeros_like(q)
    for start, end in _segments(cu_seqlens):
        if end > start:
            qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))
            attn = F.scaled_dot_product_attention(qs, ks, vs, scale=scale)
            out[start:end] = attn.transpose(0, 1)
    return out


def _check_attention(q, k, v, cu, max_seqlen, check_inputs=True):
    scale = q.shape[-1] ** -0.5
    out = ops.varlen_attention(q, k, v, cu, max_seqlen, backend="triton", check_inputs=check_inputs)
    ref = reference.varlen_attention_ref(q.double(), k.double(), v.double(), cu, max_seqlen)
    _check(out, ref, lambda: _torch_attention(q, k, v, cu, scale))


def _skip_interpreted_bf16(dtype):
    if INTERPRETED and dtype == torch.bfloat16:
        pytest.skip(BF16_DOT_INTERPRETER_BUG)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head_dim", [32, 64, 128])
def test_varlen_attention_head_dims(head_dim, dtype):
    _skip_interpreted_bf16(dtype)
    lengths = LENGTH_CASES["ragged"]
    cu = cu_seqlens_from(lengths, DEVICE)
    q, k, v, _ = _qkv(int(cu[-1]), 2, head_dim, dtype, seed=13)
    _check_attention(q, k, v, cu, max(lengths))


@pytest.mark.parametrize("lengths", ["single", "one_token", "long"])
def test_varlen_attention_lengths(lengths):
    """A batch of one, 1-token segments, and a segment longer than any query or key block."""
    cu = cu_seqlens_from(LENGTH_CASES[lengths], DEVICE)
    q, k, v, _ = _qkv(int(cu[-1]), 2, 32, torch.float16, seed=14)
    _check_attention(q, k, v, cu, max(LENGTH_CASES[lengths]))


def test_varlen_attention_undersized_max_seqlen():
    """The public API refuses a max_seqlen below the longest segment; unchecked, the kernel
    still writes every query (only slower)."""
    cu = cu_seqlens_from([40, 3, 150], DEVICE)
    q, k, v, _ = _qkv(int(cu[-1]), 1, 64, torch.float32, seed=15)
    with pytest.raises(ValidationError, match="max_seqlen=20 but a segment has 150 rows"):
        ops.varlen_attention(q, k, v, cu, 20, backend="triton")
    _check_attention(q, k, v, cu, max_seqlen=20, check_inputs=False)


# The NaN-filled neighbouring segments give NaN outputs of their own, which numpy warns about.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_varlen_attention_stays_in_segment():
    """Changing every other segment leaves a segment's output bitwise unchanged, and equals the
    segment attended on its own."""
    lengths = [5, 17, 3, 40]
    cu = cu_seqlens_from(lengths, DEVICE)
    q, k, v, qkv = _qkv(int(cu[-1]), 2, 64, torch.float32, seed=16)
    out = ops.varlen_attention(q, k, v, cu, 40, backend="triton")

    start, end = 5, 22
    qkv[:start] = 1e3 * torch.randn_like(qkv[:start])
    qkv[end:] = float("nan")
    perturbed = ops.varlen_attention(q, k, v, cu, 40, backend="triton")
    assert torch.equal(out[start:end], perturbed[start:end])

    alone_cu = cu_seqlens_from([end - start], DEVICE)
    alone = ops.varlen_attention(
        q[start:end], k[start:end], v[start:end], alone_cu, 40, backend="triton"
    )
    assert torch.equal(out[start:end], alone)


# ---------------------------------------------------------------------------------------------
# pack / unpack


def _padded_batch(lengths: list[int], seq_len: int, left_pad: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 30000, (len(lengths), seq_len), generator=gen)
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    for b, n in enumerate(lengths):
        if left_pad:
            mask[b, seq_len - n :] = 1
        else:
            mask[b, :n] = 1
    return ids.to(DEVICE), mask.to(DEVICE)


def _assert_pack_equal(ours, ref):
    packed, cu, max_seqlen, indices = ours
    assert isinstance(max_seqlen, int) and max_seqlen == ref[2]
    for got, want in ((packed, ref[0]), (cu, ref[1]), (indices, ref[3])):
        assert got.dtype == want.dtype and torch.equal(got, want)


@pytest.mark.parametrize("left_pad", [False, True], ids=["right_pad", "left_pad"])
@pytest.mark.parametrize("lengths", list(LENGTH_CASES), ids=list(LENGTH_CASES))
def test_pack(lengths, left_pad):
    seq_len = max(LENGTH_CASES[lengths]) + 2
    ids, mask = _padded_batch(LENGTH_CASES[lengths], seq_len, left_pad, seed=17)
    _assert_pack_equal(ops.pack(ids, mask, backend="triton"), reference.pack_ref(ids, mask))


def test_pack_holes_bool_mask_and_strided_ids():
    """Any mask pattern (not only padding), a bool mask, and ids that are a transposed view."""
    gen = torch.Generator().manual_seed(18)
    ids = torch.randint(0, 1000, (1500, 6), generator=gen).to(DEVICE).t()
    mask = (torch.rand(6, 1500, generator=gen) > 0.3).to(DEVICE)
    mask[4] = False
    _assert_pack_equal(ops.pack(ids, mask, backend="triton"), reference.pack_ref(ids, mask))


@pytest.mark.parametrize("dtype", [*DTYPES, torch.int64], ids=str)
def test_unpack(dtype):
    lengths = LENGTH_CASES["ragged"]
    cu = cu_seqlens_from(lengths, DEVICE)
    x = _rows(int(cu[-1]), 3 * 32, torch.float32, seed=19).mul(100).to(dtype).view(-1, 3, 32)
    out = ops.unpack(x, cu, max(lengths) + 3, backend="triton")
    assert torch.equal(out, reference.unpack_ref(x, cu, max(lengths) + 3))


def test_unpack_row_strided_and_round_trip():
    lengths = LENGTH_CASES["long"]
    cu = cu_seqlens_from(lengths, DEVICE)
    x = _strided_rows(int(cu[-1]), 384, torch.bfloat16, seed=20)
    padded = ops.unpack(x, cu, max(lengths), backend="triton")
    assert torch.equal(padded, reference.unpack_ref(x, cu, max(lengths)))
    mask = (
        torch.arange(max(lengths), device=DEVICE)[None, :]
        < torch.tensor(lengths, device=DEVICE)[:, None]
    )
    assert torch.equal(padded[mask], x)


# ---------------------------------------------------------------------------------------------
# what every op must honour: inputs untouched, clear errors, torch.library.opcheck


def _op_calls():
    """(name, custom op, args) for each Triton op, small sizes, inputs on DEVICE."""
    cu = cu_seqlens_from([3, 0, 1, 20], DEVICE)
    n_tokens = int(cu[-1])
    x = _strided_rows(n_tokens, 48, torch.float16, seed=21)
    weight, bias = _ln_params(48, torch.float16)
    residual = _rows(n_tokens, 48, torch.float16, seed=22)
    q, k, v, _ = _qkv(n_tokens, 2, 32, torch.float16, seed=23)
    ids, mask = _padded_batch([3, 0, 1, 20], 22, left_pad=True, seed=24)
    triton_ops = torch.ops.mlservices_triton
    return [
        ("pack", triton_ops.pack, (ids, mask)),
        ("unpack", triton_ops.unpack, (x, cu, 20)),
        ("pool", triton_ops.pool, (x, cu, "mean", True, 1e-12)),
        ("pool_max", triton_ops.pool, (x, cu, "max", False, 1e-12)),
        ("l2_normalize", triton_ops.l2_normalize, (x, 1e-12)),
        ("layer_norm", triton_ops.layer_norm, (x, weight, bias, 1e-12, None)),
        ("layer_norm_residual", triton_ops.layer_norm, (x, weight, bias, 1e-12, residual)),
        ("varlen_attention", triton_ops.varlen_attention, (q, k, v, cu, 20, 32**-0.5)),
    ]


OP_NAMES = [name for name, _, _ in _op_calls()]


def _op_call(name):
    return next((op, args) for n, op, args in _op_calls() if n == name)


@pytest.mark.parametrize("name", OP_NAMES)
def test_inputs_never_written(name):
    """Each input, and the whole buffer a strided input views (the rest of a fused QKV, the
    padding columns of a wider tensor), is bitwise unchanged."""
    op, args = _op_call(name)
    buffers = [a if a._base is None else a._base for a in args if isinstance(a, torch.Tensor)]
    before = [b.clone() for b in buffers]
    op(*args)
    for got, want in zip(buffers, before, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", OP_NAMES)
def test_opcheck(name):
    """Schema, fake implementation (pack's data-dependent sizes included), autograd
    registration and AOT dispatch, all on the real kernels."""
    op, args = _op_call(name)
    torch.library.opcheck(op, args)


def test_errors_name_op_argument_and_value():
    x64 = _rows(4, 8, torch.float64, seed=25)
    with pytest.raises(ValidationError, match=r"l2_normalize.*float64"):
        ops.l2_normalize(x64, backend="triton")
    wide = _rows(1, 16385, torch.float32, seed=26)
    with pytest.raises(ValidationError, match=r"layer_norm.*16384.*16385"):
        ops.layer_norm(wide, wide[0], wide[0], backend="triton")
    cu = cu_seqlens_from([2, 2], DEVICE)
    q = _rows(4, 2 * 48, torch.float16, seed=27).view(4, 2, 48)
    with pytest.raises(ValidationError, match=r"varlen_attention.*head_dim.*48"):
        ops.varlen_attention(q, q, q, cu, 2, backend="triton")
