"""The C++ CPU backend against the float64 reference, through the public op API.

Every op runs on fresh random inputs of ragged lengths (kernel_cases.LENGTH_CASES: empty and
1-token segments, a batch of one, a 301-token segment longer than any block). fp32 is compared
with TOLERANCES; fp16/bf16 with assert_close_lowp (at most twice torch's own error in that dtype,
computed here with plain torch ops in the same dtype, plus atol); fp64 tightly.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_cases import (
    LENGTH_CASES,
    assert_close_lowp,
    assert_close_to_ref,
    cu_seqlens_from,
    random_rows,
)

import mlservices.ops as ops
from mlservices.errors import ValidationError
from mlservices.ops import _cpp, reference

pytestmark = pytest.mark.skipif(
    _cpp.BUILD_INFO is None, reason=f"mlservices._C is not built: {_cpp.IMPORT_ERROR}"
)

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
HIDDEN = [384, 768, 1023]
# (heads, head_dim): MiniLM's 12 x 32, and wider heads.
HEADS = [(12, 32), (4, 64), (2, 128)]
POOL_MODES = ("mean", "cls", "last", "max")
# fp64 runs the same kernels in double: only summation order differs from the reference.
FP64_TOL = 1e-10


def _tiers() -> list[str]:
    order = ["default", "avx2", "avx512"]
    best = _cpp.BUILD_INFO["cpu_capability_supported"] if _cpp.BUILD_INFO else "default"
    return order[: order.index(best) + 1]


@pytest.fixture(params=_tiers())
def tier(request):
    """Runs a test at one CPU kernel tier (every tier this CPU supports), then restores it."""
    from mlservices import _C

    previous = _C.set_cpu_capability(request.param)
    yield request.param
    _C.set_cpu_capability(previous)


def _check(out: torch.Tensor, ref64: torch.Tensor, torch_lowp) -> None:
    """Compare with the float64 reference; torch_lowp() is torch's own result in out's dtype."""
    assert out.dtype != torch.float64 or ref64.dtype == torch.float64
    assert_close_to_ref(out, ref64, torch_lowp, FP64_TOL)


def _strided(x: torch.Tensor) -> torch.Tensor:
    """The same values as a row-strided view (rows 7 elements wider than they are)."""
    wide = torch.zeros(x.shape[0], x.shape[1] + 7, dtype=x.dtype)
    wide[:, 3 : 3 + x.shape[1]] = x
    view = wide[:, 3 : 3 + x.shape[1]]
    assert not view.is_contiguous() and view.stride(-1) == 1
    return view


# --- pack / unpack ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int64, torch.int32, torch.float32])
@pytest.mark.parametrize("ids_dtype", [torch.int64, torch.int32])
def test_pack_matches_reference(mask_dtype, ids_dtype):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30522, (6, 11), generator=gen).to(ids_dtype)
    mask = torch.rand(6, 11, generator=gen) > 0.3
    mask[1] = False  # an empty row
    mask[2, :] = True  # a full row
    mask[3, :4] = False  # left padding
    got = ops.pack(ids, mask.to(mask_dtype), backend="cpu")
    want = reference.pack_ref(ids, mask)
    for g, w in zip(got, want, strict=True):
        if isinstance(w, torch.Tensor):
            assert g.dtype == w.dtype
            assert torch.equal(g, w)
        else:
            assert g == w


def test_pack_strided_inputs_and_batch_of_one():
    ids = torch.arange(40).view(4, 10).t()  # [10, 4], column-major strides
    mask = (torch.arange(40).view(4, 10) % 3 != 0).t()
    for a, b in ((ids, mask), (ids[:1], mask[:1])):
        got = ops.pack(a, b, backend="cpu")
        want = reference.pack_ref(a, b)
        assert all(
            torch.equal(g, w) if isinstance(w, torch.Tensor) else g == w
            for g, w in zip(got, want, strict=True)
        )


@pytest.mark.parametrize("case", list(LENGTH_CASES))
@pytest.mark.parametrize("trailing", [(), (384,), (3, 32)])
def test_unpack_matches_reference(case, trailing):
    lengths = LENGTH_CASES[case]
    cu = cu_seqlens_from(lengths)
    x = torch.randn(int(cu[-1]), *trailing)
    got = ops.unpack(x, cu, max(lengths), backend="cpu")
    assert torch.equal(got, reference.unpack_ref(x, cu, max(lengths)))
    # A larger max_seqlen only adds zero rows.
    got = ops.unpack(x, cu, max(lengths) + 3, backend="cpu")
    assert torch.equal(got, reference.unpack_ref(x, cu, max(lengths) + 3))


def test_unpack_strided_rows_and_short_max_seqlen():
    lengths = LENGTH_CASES["ragged"]
    cu = cu_seqlens_from(lengths)
    x = _strided(torch.randn(int(cu[-1]), 33))
    assert torch.equal(ops.unpack(x, cu, 64, backend="cpu"), reference.unpack_ref(x, cu, 64))
    with pytest.raises(RuntimeError, match="max_seqlen=63 but segment 5 has 64 rows"):
        torch.ops.mlservices.unpack(x, cu, 63)


# --- pool ------------------------------------------------------------------------------------


def _torch_pool_lowp(x, cu, mode, normalize, eps):
    rows = []
    for start, end in zip(cu.tolist()[:-1], cu.tolist()[1:], strict=True):
        seg = x[start:end]
        if end == start:
            rows.append(x.new_zeros(x.shape[1]))
        else:
            rows.append(
                {"mean": seg.mean(0), "cls": seg[0], "last": seg[-1], "max": seg.amax(0)}[mode]
            )
    out = torch.stack(rows)
    # eps=1e-12 underflows to 0 in fp16 (0/0 on empty segments): use the dtype's smallest normal.
    eps = max(eps, torch.finfo(x.dtype).tiny)
    return F.normalize(out, dim=-1, eps=eps) if normalize else out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("case", list(LENGTH_CASES))
def test_pool_matches_reference(tier, case, mode, dtype):
    lengths = LENGTH_CASES[case]
    hidden = HIDDEN[list(LENGTH_CASES).index(case) % len(HIDDEN)]
    cu = cu_seqlens_from(lengths)
    x = random_rows(int(cu[-1]), hidden, dtype, seed=len(lengths))
    for normalize in (False, True):
        out = ops.pool(x, cu, mode, normalize, backend="cpu")
        assert out.dtype == dtype and out.shape == (len(lengths), hidden)
        ref64 = reference.pool_ref(x.double(), cu, mode, normalize)
        torch_out = _torch_pool_lowp(x, cu, mode, normalize, 1e-12)
        _check(out, ref64, lambda torch_out=torch_out: torch_out)


def test_pool_max_all_negative_and_strided():
    cu = cu_seqlens_from([4, 1, 0, 9])
    x = -1.0 - torch.rand(14, 384)  # every value negative: a zero-initialised max would be wrong
    out = ops.pool(_strided(x), cu, "max", backend="cpu")
    torch.testing.assert_close(out, reference.pool_ref(x, cu, "max"), atol=0, rtol=0)
    assert (out[[0, 1, 3]] < 0).all() and (out[2] == 0).all()


# --- l2_normalize ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_l2_normalize_matches_reference(tier, hidden, dtype):
    x = random_rows(37, hidden, dtype, seed=hidden)
    out = ops.l2_normalize(x, backend="cpu")
    ref64 = reference.l2_normalize_ref(x.double())
    _check(out, ref64, lambda: F.normalize(x, dim=-1, eps=1e-12))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_l2_normalize_zero_row_stays_zero(tier, dtype):
    x = random_rows(5, 384, dtype, seed=1)
    x[2] = 0
    out = ops.l2_normalize(_strided(x), backend="cpu")
    assert torch.isfinite(out).all()
    assert (out[2] == 0).all()
    normalized = torch.cat([out[:2], out[3:]]).float()
    torch.testing.assert_close(normalized.norm(dim=-1), torch.ones(4), atol=1e-2, rtol=0)


# --- layer_norm ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm_matches_reference(tier, with_residual, hidden, dtype):
    n_rows = 53
    x = random_rows(n_rows, hidden, dtype, seed=1)
    residual = random_rows(n_rows, hidden, dtype, seed=2) if with_residual else None
    weight = random_rows(1, hidden, dtype, seed=3)[0]
    bias = random_rows(1, hidden, dtype, seed=4)[0]
    out = ops.layer_norm(x, weight, bias, 1e-12, residual, backend="cpu")
    r64 = residual.double() if with_residual else None
    ref64 = reference.layer_norm_ref(x.double(), weight.double(), bias.double(), 1e-12, r64)

    def torch_lowp():
        h = x + residual if with_residual else x
        return F.layer_norm(h, (hidden,), weight, bias, 1e-12)

    _check(out, ref64, torch_lowp)


def test_layer_norm_strided_inputs_and_float32_params():
    x = random_rows(29, 768, torch.bfloat16, seed=5)
    residual = random_rows(29, 768, torch.bfloat16, seed=6)
    weight, bias = torch.randn(768), torch.randn(768)
    out = ops.layer_norm(_strided(x), weight, bias, 1e-5, _strided(residual), backend="cpu")
    ref64 = reference.layer_norm_ref(
        x.double(), weight.double(), bias.double(), 1e-5, residual.double()
    )
    torch_out = F.layer_norm((x + residual).float(), (768,), weight, bias, 1e-5).bfloat16()
    assert_close_lowp(out, ref64, torch_out)


# --- varlen_attention ------------------------------------------------------------------------


def _qkv(n_tokens, heads, head_dim, dtype, seed):
    """q, k, v as strided views of one fused [T, 3 * hidden] projection, as the encoder has."""
    qkv = random_rows(n_tokens, 3 * heads * head_dim, dtype, seed)
    return qkv.view(n_tokens, 3, heads, head_dim).unbind(1)


def _torch_attention_lowp(q, k, v, cu):
    out = torch.zeros_like(q)
    for start, end in zip(cu.tolist()[:-1], cu.tolist()[1:], strict=True):
        if end > start:
            qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))
            out[start:end] = F.scaled_dot_product_attention(qs, ks, vs).transpose(0, 1)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads, head_dim", HEADS)
@pytest.mark.parametrize("case", list(LENGTH_CASES))
def test_varlen_attention_matches_reference(tier, case, heads, head_dim, dtype):
    lengths = LENGTH_CASES[case]
    cu = cu_seqlens_from(lengths)
    q, k, v = _qkv(int(cu[-1]), heads, head_dim, dtype, seed=head_dim)
    assert not q.is_contiguous()
    out = ops.varlen_attention(q, k, v, cu, max(lengths), backend="cpu")
    assert out.shape == q.shape and out.dtype == dtype
    ref64 = reference.varlen_attention_ref(q.double(), k.double(), v.double(), cu, max(lengths))
    _check(out, ref64, lambda: _torch_attention_lowp(q, k, v, cu))


def test_varlen_attention_odd_head_dim_and_scale():
    cu = cu_seqlens_from([7, 19, 2])
    q, k, v = _qkv(28, 3, 40, torch.float32, seed=9)
    out = ops.varlen_attention(q, k, v, cu, 19, scale=0.3, backend="cpu")
    ref64 = reference.varlen_attention_ref(q.double(), k.double(), v.double(), cu, 19, 0.3)
    torch.testing.assert_close(out.double(), ref64, atol=1e-5, rtol=1e-5)


def test_varlen_attention_stays_inside_segments():
    lengths = LENGTH_CASES["long"]
    cu = cu_seqlens_from(lengths)
    q, k, v = _qkv(int(cu[-1]), 12, 32, torch.float32, seed=3)
    before = ops.varlen_attention(q, k, v, cu, max(lengths), backend="cpu")
    # Change every token outside segment 1 (rows 3..304); segment 1's output must not move.
    q2, k2, v2 = (t.clone() for t in (q, k, v))
    for t in (q2, k2, v2):
        t[:3] = 1e3
        t[304:] = -1e3
    after = ops.varlen_attention(q2, k2, v2, cu, max(lengths), backend="cpu")
    assert torch.equal(after[3:304], before[3:304])
    assert not torch.equal(after[:3], before[:3])


# --- contracts shared by every op ------------------------------------------------------------


def _calls():
    """(name, fn, inputs) for one small call of every op."""
    cu = cu_seqlens_from([3, 0, 5, 1])
    x = random_rows(9, 40, torch.float32, seed=7)
    res = random_rows(9, 40, torch.float32, seed=8)
    w, b = torch.randn(40), torch.randn(40)
    q, k, v = _qkv(9, 2, 16, torch.float32, seed=9)
    ids = torch.randint(0, 100, (3, 5))
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    return [
        ("pack", lambda: ops.pack(ids, mask, backend="cpu"), (ids, mask)),
        ("unpack", lambda: ops.unpack(x, cu, 5, backend="cpu"), (x, cu)),
        ("pool", lambda: ops.pool(x, cu, "max", True, backend="cpu"), (x, cu)),
        ("l2_normalize", lambda: ops.l2_normalize(x, backend="cpu"), (x,)),
        ("layer_norm", lambda: ops.layer_norm(x, w, b, 1e-5, res, backend="cpu"), (x, w, b, res)),
        (
            "varlen_attention",
            lambda: ops.varlen_attention(q, k, v, cu, 5, backend="cpu"),
            (q, k, v, cu),
        ),
    ]


@pytest.mark.parametrize("index", range(6), ids=lambda i: _calls()[i][0])
def test_never_writes_inputs(index):
    _, fn, inputs = _calls()[index]
    before = [t.clone() for t in inputs]
    fn()
    for t, saved in zip(inputs, before, strict=True):
        assert torch.equal(t, saved)


def test_non_contiguous_last_dim_refused():
    x = torch.randn(40, 9).t()  # [9, 40] with strides (1, 9)
    cu = cu_seqlens_from([4, 5])
    with pytest.raises(ValidationError, match="contiguous last dimension"):
        ops.pool(x, cu, backend="cpu")
    # The kernels refuse it too when called directly, naming the op and the argument.
    for call in (
        lambda: torch.ops.mlservices.segment_pool(x, cu, "mean", False, 1e-12),
        lambda: torch.ops.mlservices.l2_normalize(x, 1e-12),
        lambda: torch.ops.mlservices.layer_norm(x, torch.ones(40), torch.zeros(40), 1e-5, None),
    ):
        with pytest.raises(RuntimeError, match=r"mlservices\.\w+: x must have a contiguous last"):
            call()
    q = torch.randn(9, 16, 2).transpose(1, 2)
    with pytest.raises(RuntimeError, match="varlen_attention: q must have a contiguous last"):
        torch.ops.mlservices.varlen_attention(q, q, q, cu, 5, 0.25)


@pytest.mark.parametrize(
    "cu, rule",
    [
        (torch.tensor([0, 4, 9], dtype=torch.int64), "must be int32"),
        (torch.tensor([1, 4, 9], dtype=torch.int32), "must start at 0"),
        (torch.tensor([0, 6, 4, 9], dtype=torch.int32), "must be non-decreasing"),
        (torch.tensor([0, 4, 8], dtype=torch.int32), r"must end at the number of rows \(9\)"),
    ],
    ids=["int64", "start", "decreasing", "end"],
)
def test_cu_seqlens_rules(cu, rule):
    x = torch.randn(9, 16)
    q = torch.randn(9, 2, 8)
    with pytest.raises(ValidationError, match=rule):
        ops.pool(x, cu, backend="cpu")
    for call in (
        lambda: torch.ops.mlservices.segment_pool(x, cu, "mean", False, 1e-12),
        lambda: torch.ops.mlservices.unpack(x, cu, 9),
        lambda: torch.ops.mlservices.varlen_attention(q, q, q, cu, 9, 0.3),
    ):
        with pytest.raises(RuntimeError, match=rf"mlservices\.\w+: cu_seqlens {rule}"):
            call()


def _opcheck_cases():
    cu = cu_seqlens_from([3, 0, 5, 1])
    x = torch.randn(9, 24)
    q, k, v = _qkv(9, 2, 8, torch.float32, seed=1)
    ids = torch.randint(0, 100, (3, 5))
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]])
    return {
        "pack": (torch.ops.mlservices.pack, (ids, mask)),
        "unpack": (torch.ops.mlservices.unpack, (x, cu, 5)),
        "segment_pool": (torch.ops.mlservices.segment_pool, (x, cu, "mean", True, 1e-12)),
        "l2_normalize": (torch.ops.mlservices.l2_normalize, (x, 1e-12)),
        "layer_norm": (
            torch.ops.mlservices.layer_norm,
            (x, torch.randn(24), torch.randn(24), 1e-5, torch.randn(9, 24)),
        ),
        "varlen_attention": (torch.ops.mlservices.varlen_attention, (q, k, v, cu, 5, 0.35)),
    }


@pytest.mark.parametrize("name", list(_opcheck_cases()))
def test_opcheck(name):
    op, args = _opcheck_cases()[name]
    torch.library.opcheck(op, args)


def test_public_api_checks_devices_dtypes_and_max_seqlen():
    """Typed errors before any kernel runs (the kernel would read the wrong memory)."""
    from mlservices.errors import ValidationError

    x = torch.randn(7, 16)
    with pytest.raises(ValidationError, match="different devices"):
        ops.layer_norm(x, torch.ones(16, device="meta"), torch.zeros(16))
    with pytest.raises(ValidationError, match="float tensor"):
        ops.layer_norm(x, torch.ones(16, dtype=torch.int64), torch.zeros(16))
    with pytest.raises(ValidationError, match="residual must match"):
        ops.layer_norm(x, torch.ones(16), torch.zeros(16), residual=x.double())
    q = torch.randn(10, 2, 8)
    cu = cu_seqlens_from([4, 6])
    with pytest.raises(ValidationError, match="max_seqlen=3 but a segment has 6 rows"):
        ops.varlen_attention(q, q, q, cu, 3)
    with pytest.raises(ValidationError, match="share one shape and dtype"):
        ops.varlen_attention(q, q.double(), q, cu, 6)
