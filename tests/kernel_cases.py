"""Inputs and tolerances shared by the kernel-correctness tests of every backend.

Tolerances are ``(dtype, atol, rtol)`` with their reason. For fp16/bf16 a kernel's error against
the float64 reference may be at most twice torch's own error in the same dtype, plus atol; see
``assert_close_lowp``.
"""

from __future__ import annotations

import torch

# fp32: float32 accumulation in a different order than the float64 reference.
# fp16/bf16: checked relative to torch's own error in that dtype (assert_close_lowp).
TOLERANCES = {
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 0.0),
    torch.bfloat16: (8e-3, 0.0),
}

# Ragged length mixes: empty and 1-token segments, a batch of one, one longer than any block.
LENGTH_CASES = {
    "ragged": [5, 0, 1, 17, 3, 64, 1, 9],
    "single": [13],
    "one_token": [1, 1, 1],
    "long": [3, 301, 0, 7],
}


def cu_seqlens_from(lengths: list[int], device: str | torch.device = "cpu") -> torch.Tensor:
    """[B + 1] int32 offsets for the given segment lengths."""
    offsets = [0]
    for n in lengths:
        offsets.append(offsets[-1] + n)
    return torch.tensor(offsets, dtype=torch.int32, device=device)


def random_rows(n_rows: int, n_cols: int, dtype: torch.dtype, seed: int, device="cpu"):
    """Fresh random [n_rows, n_cols] in ``dtype`` (generated in float64, then cast)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_rows, n_cols, generator=gen, dtype=torch.float64).to(device, dtype)


def assert_close_lowp(out: torch.Tensor, ref64: torch.Tensor, torch_out: torch.Tensor) -> None:
    """Low-precision check: |out - ref| <= 2 * |torch_out - ref| (elementwise max) + atol.

    ``torch_out`` is torch's own result computed in the same low-precision dtype.
    """
    atol, _ = TOLERANCES[out.dtype]
    err = (out.double() - ref64).abs().max().item()
    torch_err = (torch_out.double() - ref64).abs().max().item()
    assert err <= 2 * torch_err + atol, f"error {err:.3g} > 2 x torch's {torch_err:.3g} + {atol}"


def assert_close_to_ref(out, ref64, torch_lowp=None, fp64_tol: float = 1e-10) -> None:
    """Check a kernel's output against the float64 reference, by out's dtype.

    float64: ``fp64_tol`` (only summation order differs); float32: TOLERANCES; fp16/bf16: at most
    twice torch's own error in that dtype (``torch_lowp()`` computes it) plus atol.
    """
    if out.dtype == torch.float64:
        torch.testing.assert_close(out, ref64, atol=fp64_tol, rtol=fp64_tol)
    elif out.dtype == torch.float32:
        atol, rtol = TOLERANCES[torch.float32]
        torch.testing.assert_close(out.double(), ref64, atol=atol, rtol=rtol)
    else:
        assert_close_lowp(out.cpu(), ref64.cpu(), torch_lowp().cpu())
