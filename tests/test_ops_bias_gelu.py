"""bias_gelu / bias_gelu_ (GELU(x + bias) after a bias-free matmul) against the float64 reference.

The C++ CPU kernel runs at every tier this CPU supports, on fresh random rows with odd widths
(1023, a width that is no multiple of any vector), fp32 with TOLERANCES, fp16/bf16 with
assert_close_lowp (at most twice torch's own F.gelu error in that dtype, plus atol), fp64 tightly.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_cases import assert_close_lowp, assert_close_to_ref, random_rows

import mlservices.ops as ops
from mlservices.errors import ValidationError
from mlservices.ops import _cpp, reference

pytestmark = pytest.mark.skipif(
    _cpp.BUILD_INFO is None, reason=f"mlservices._C is not built: {_cpp.IMPORT_ERROR}"
)

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# 1536: MiniLM's intermediate size; 1023 and 7: tails shorter than a vector; 1: a single column.
WIDTHS = [1, 7, 384, 1023, 1536]
APPROXIMATE = ["none", "tanh"]
# fp64 runs the same math in double (SLEEF erf/tanh within 1 ulp): near-exact.
FP64_TOL = 1e-12


def _tiers() -> list[str]:
    order = ["default", "avx2", "avx512"]
    return order[: order.index(_cpp.BUILD_INFO["cpu_capability_supported"]) + 1]


@pytest.fixture(params=_tiers() if _cpp.BUILD_INFO else ["default"])
def tier(request):
    """Runs a test at one CPU kernel tier, then restores the previous one."""
    from mlservices import _C

    previous = _C.set_cpu_capability(request.param)
    yield request.param
    _C.set_cpu_capability(previous)


def _inputs(n_rows: int, n_cols: int, dtype: torch.dtype, seed: int):
    """x spread over GELU's curved range (|x| up to ~12) and a bias in x's dtype."""
    x = (3 * random_rows(n_rows, n_cols, torch.float64, seed)).to(dtype)
    bias = random_rows(1, n_cols, dtype, seed + 1)[0]
    return x, bias


def _check(out, x, bias, approximate):
    ref64 = reference.bias_gelu_ref(x.double(), bias.double(), approximate)
    assert_close_to_ref(out, ref64, lambda: F.gelu(x + bias, approximate=approximate), FP64_TOL)


@pytest.mark.parametrize("approximate", APPROXIMATE)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", WIDTHS)
def test_bias_gelu_matches_reference(tier, n_cols, dtype, approximate):
    x, bias = _inputs(37, n_cols, dtype, seed=n_cols)
    out = ops.bias_gelu(x, bias, approximate, backend="cpu")
    assert out.shape == x.shape and out.dtype == dtype and out.is_contiguous()
    _check(out, x, bias, approximate)


@pytest.mark.parametrize("approximate", APPROXIMATE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_equals_out_of_place(tier, dtype, approximate):
    x, bias = _inputs(29, 1023, dtype, seed=3)
    expected = ops.bias_gelu(x, bias, approximate, backend="cpu")
    result = ops.bias_gelu_(x, bias, approximate, backend="cpu")
    assert result is x
    assert torch.equal(x, expected)


def test_strided_rows_and_float32_bias():
    x, _ = _inputs(41, 1536, torch.bfloat16, seed=5)
    bias = torch.randn(1536)  # float32 bias for bf16 x: read as is
    wide = torch.zeros(41, 1536 + 9, dtype=torch.bfloat16)
    wide[:, 4 : 4 + 1536] = x
    view = wide[:, 4 : 4 + 1536]
    assert not view.is_contiguous() and view.stride(-1) == 1
    before = wide.clone()
    out = ops.bias_gelu(view, bias, backend="cpu")
    assert torch.equal(wide, before), "bias_gelu wrote into its input"
    ref64 = reference.bias_gelu_ref(x.double(), bias.double())
    assert_close_lowp(out, ref64, F.gelu(x.float() + bias).bfloat16())


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_inplace_writes_only_its_view(backend):
    wide = random_rows(23, 1023 + 11, torch.float32, seed=8)
    view = wide[:, 5 : 5 + 1023]
    x, bias = view.clone(), torch.randn(1023)
    outside = torch.cat([wide[:, :5], wide[:, 5 + 1023 :]], dim=1)
    assert ops.bias_gelu_(view, bias, backend=backend) is view
    assert torch.equal(torch.cat([wide[:, :5], wide[:, 5 + 1023 :]], dim=1), outside)
    _check(view, x, bias, "none")


def test_empty_rows():
    x = torch.empty(0, 1536)
    assert ops.bias_gelu(x, torch.randn(1536), backend="cpu").shape == (0, 1536)
    assert ops.bias_gelu_(x, torch.randn(1536), backend="cpu") is x


def test_bad_arguments_refused():
    x = torch.randn(9, 40)
    with pytest.raises(ValidationError, match=r"bias_gelu: bias must be \[40\], got \(39,\)"):
        ops.bias_gelu(x, torch.randn(39), backend="cpu")
    with pytest.raises(ValidationError, match="approximate must be one of none, tanh; got 'erf'"):
        ops.bias_gelu_(x, torch.randn(40), "erf", backend="cpu")
    with pytest.raises(ValidationError, match="bias_gelu: x must have a contiguous last"):
        ops.bias_gelu(torch.randn(40, 9).t(), torch.randn(40), backend="cpu")
    # The kernels refuse them too when called directly, naming the op and the argument.
    with pytest.raises(RuntimeError, match=r"mlservices\.bias_gelu: bias must be \[40\]"):
        torch.ops.mlservices.bias_gelu(x, torch.randn(39), "none")
    with pytest.raises(RuntimeError, match=r"mlservices\.bias_gelu_: approximate must be 'none'"):
        torch.ops.mlservices.bias_gelu_(x, torch.randn(40), "erf")
    with pytest.raises(RuntimeError, match=r"mlservices\.bias_gelu: x must have a contiguous"):
        torch.ops.mlservices.bias_gelu(torch.randn(40, 9).t(), torch.randn(9), "none")


@pytest.mark.parametrize("name", ["bias_gelu", "bias_gelu_"])
def test_opcheck(name):
    args = (torch.randn(9, 24), torch.randn(24), "tanh")
    torch.library.opcheck(getattr(torch.ops.mlservices, name), args)
