"""Every op x every backend on device tensors: correctness against float64, then speed.

1. Correctness: each backend this install has for the device (``triton``, ``cuda``, ``cpu``,
   ``reference``) on fresh random ragged inputs (0- and 1-token segments, one of 301 tokens),
   hidden 384 and 1023, head dims 32/64/128, in fp32, fp16 and bf16, against the reference op
   run in float64. Rule (tests/kernel_cases.py's): error <= 2 x torch's own error in the same
   dtype + atol; pack and unpack must be exact.
2. Speed: each backend and the fastest plain-torch equivalent at ~65k ragged tokens, hidden 384
   and 1024, fp16 and fp32; achieved GB/s from counted bytes, beside the device-to-device copy
   bandwidth measured in the same run. Attention also reports TFLOP/s from counted flops and
   runs against padded SDPA and torch's own varlen (flash) attention where that exists.

    python3 benchmarks/gpu_ops_check.py --out DIR      # on a GPU
    python3 benchmarks/gpu_ops_check.py --cpu          # the same code on CPU, small sizes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _common  # noqa: E402
from mlservices import ops  # noqa: E402
from mlservices.ops import _dispatch  # noqa: E402

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# atol per dtype, added to 2 x torch's own error (see tests/kernel_cases.py for the reasons).
ATOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
CHECK_LENGTHS = [5, 0, 1, 17, 3, 64, 1, 9, 301]
POOL_CASES = [(mode, norm) for mode in ops.POOL_MODES for norm in (False, True)]
HEAD_SHAPES = [(6, 64), (12, 32), (3, 128)]


@dataclass
class Check:
    op: str
    case: str
    backend: str
    dtype: str
    error: float
    torch_error: float
    ok: bool
    note: str = ""


@dataclass
class Speed:
    op: str
    dtype: str
    hidden: int
    tokens: int
    impl: str
    median_us: float
    gbs: float
    pct_copy: float
    tflops: float | None = None
    speedup_vs_torch: float | None = None
    note: str = ""


# -- inputs ---------------------------------------------------------------------------------


def ragged(lengths: list[int], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """cu_seqlens [B + 1] int32, segment id per token [T], position per token [T], max len."""
    lens = torch.tensor(lengths, dtype=torch.int64)
    cu = F.pad(torch.cumsum(lens, 0), (1, 0)).to(torch.int32)
    seg = torch.repeat_interleave(torch.arange(len(lengths)), lens)
    pos = torch.arange(int(lens.sum())) - cu[:-1].long()[seg]
    return cu.to(device), seg.to(device), pos.to(device), max(lengths, default=0)


def randn(shape, seed: int, device, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype)


def speed_lengths(n_tokens: int, seed: int = 0) -> list[int]:
    """A natural-looking mix: lengths 1..256 (log-uniform), summing to about ``n_tokens``."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    while total < n_tokens:
        n = int(np.exp(rng.uniform(0, np.log(256))))
        out.append(n)
        total += n
    return out


# -- plain torch equivalents (torch's own result in a dtype, and the speed baseline) ----------


def torch_pool(x, cu, seg, mode, normalize, eps=1e-12):
    n_seg, hidden = cu.numel() - 1, x.shape[1]
    counts = (cu[1:] - cu[:-1]).long()
    if mode == "mean":
        sums = x.new_zeros((n_seg, hidden)).index_add_(0, seg, x)
        out = sums / counts.clamp_min(1).unsqueeze(1).to(x.dtype)
    elif mode == "max":
        out = x.new_full((n_seg, hidden), float("-inf"))
        out.scatter_reduce_(0, seg.unsqueeze(1).expand(-1, hidden), x, "amax")
        out = torch.where(counts.unsqueeze(1) > 0, out, torch.zeros_like(out))
    else:
        rows = cu[:-1].long() if mode == "cls" else (cu[1:].long() - 1).clamp_min(0)
        out = x.index_select(0, rows.clamp_max(max(x.shape[0] - 1, 0))) if x.shape[0] else x
        out = torch.where(counts.unsqueeze(1) > 0, out, torch.zeros_like(out))
    return F.normalize(out, dim=-1, eps=eps) if normalize else out


def torch_layer_norm(x, w, b, eps, residual):
    h = x if residual is None else x + residual
    return F.layer_norm(h, (h.shape[-1],), w, b, eps)


def torch_padded_attention(q, k, v, cu, seg, pos, max_len, scale):
    """Pad to [B, heads, L, d], SDPA with a key mask, unpad: what a padded model does."""
    n_seg = cu.numel() - 1
    padded = []
    for t in (q, k, v):
        p = t.new_zeros((n_seg, max_len, *t.shape[1:]))
        p[seg, pos] = t
        padded.append(p.transpose(1, 2))
    mask = torch.arange(max_len, device=q.device)[None, :] < (cu[1:] - cu[:-1])[:, None]
    out = F.scaled_dot_product_attention(*padded, attn_mask=mask[:, None, None, :], scale=scale)
    return out.transpose(1, 2)[seg, pos]


def torch_unpack(x, cu, seg, pos, max_len):
    out = x.new_zeros((cu.numel() - 1, max_len, *x.shape[1:]))
    out[seg, pos] = x
    return out


def torch_varlen_attention() -> Callable | None:
    """torch's own varlen (flash) attention, when this torch has it for the device."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


# -- correctness ----------------------------------------------------------------------------


def backends(op: str, device: torch.device) -> list[str]:
    return _dispatch.backends_for(op, device.type)


def error(a: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest absolute difference; NaN entries of ``a`` count as infinitely wrong."""
    if a.numel() == 0:
        return 0.0
    return float((a.double() - ref.double()).abs().nan_to_num(nan=float("inf")).max())


def torch_error(own: torch.Tensor, ref: torch.Tensor) -> float:
    """torch's own error over its finite entries: F.normalize in fp16 turns a zero row into NaN
    (its eps underflows), which is torch's failure, not a bar for the kernels."""
    finite = torch.isfinite(own)
    if not bool(finite.any()):
        return 0.0
    return float((own.double() - ref.double()).abs()[finite].max())


def judge(op, case, backend, dtype, fn, ref64, torch_out) -> Check:
    """Run ``fn`` (the backend's op) and judge it against the float64 reference."""
    name = str(dtype).removeprefix("torch.")
    try:
        out = fn()
    except Exception as exc:  # report and go on: one broken backend must not hide the others
        return Check(op, case, backend, name, float("nan"), float("nan"), False, repr(exc)[:200])
    err, torch_err = error(out, ref64), torch_error(torch_out, ref64)
    ok = bool(err <= 2 * torch_err + ATOL[dtype]) and out.dtype == dtype
    return Check(op, case, backend, name, err, torch_err, ok)


def check_pool(device) -> list[Check]:
    cu, seg, _, _ = ragged(CHECK_LENGTHS, device)
    out = []
    for hidden in (384, 1023):
        x64 = randn((int(cu[-1]), hidden), hidden, device)
        for dtype in DTYPES:
            x = x64.to(dtype)
            for mode, norm in POOL_CASES:
                ref = ops.pool(x64, cu, mode, norm, backend="reference")
                own = torch_pool(x, cu, seg, mode, norm)
                for be in backends("pool", device):
                    out.append(
                        judge(
                            "pool",
                            f"{mode}{'+l2' if norm else ''} H={hidden}",
                            be,
                            dtype,
                            partial(ops.pool, x, cu, mode, norm, backend=be),
                            ref,
                            own,
                        )
                    )
    return out


def check_l2_layer_norm(device) -> list[Check]:
    out = []
    for hidden in (384, 1023):
        x64 = randn((257, hidden), 1, device)
        x64[3] = 0.0  # a zero row must stay zero
        r64, w64, b64 = (
            randn((257, hidden), 2, device),
            randn((hidden,), 3, device),
            randn((hidden,), 4, device),
        )
        for dtype in DTYPES:
            x, r, w, b = (t.to(dtype) for t in (x64, r64, w64, b64))
            ref = ops.l2_normalize(x64, backend="reference")
            own = F.normalize(x, dim=-1, eps=1e-12)
            for be in backends("l2_normalize", device):
                fn = partial(ops.l2_normalize, x, backend=be)
                out.append(judge("l2_normalize", f"H={hidden}", be, dtype, fn, ref, own))
            for res in (None, r):
                ref = ops.layer_norm(
                    x64, w64, b64, 1e-12, None if res is None else r64, backend="reference"
                )
                own = torch_layer_norm(x, w, b, 1e-12, res)
                case = f"H={hidden}{' +residual' if res is not None else ''}"
                for be in backends("layer_norm", device):
                    fn = partial(ops.layer_norm, x, w, b, 1e-12, res, backend=be)
                    out.append(judge("layer_norm", case, be, dtype, fn, ref, own))
    return out


def check_attention(device) -> list[Check]:
    cu, seg, pos, max_len = ragged(CHECK_LENGTHS, device)
    n_tokens, out = int(cu[-1]), []
    for heads, dim in HEAD_SHAPES:
        q64, k64, v64 = (randn((n_tokens, heads, dim), s, device) for s in (5, 6, 7))
        ref = ops.varlen_attention(q64, k64, v64, cu, max_len, backend="reference")
        for dtype in DTYPES:
            q, k, v = (t.to(dtype) for t in (q64, k64, v64))
            own = torch_padded_attention(q, k, v, cu, seg, pos, max_len, dim**-0.5)
            for be in backends("varlen_attention", device):
                fn = partial(ops.varlen_attention, q, k, v, cu, max_len, backend=be)
                out.append(
                    judge("varlen_attention", f"heads={heads} d={dim}", be, dtype, fn, ref, own)
                )
    return out


def check_pack_unpack(device) -> list[Check]:
    cu, seg, pos, max_len = ragged(CHECK_LENGTHS, device)
    n_seg = len(CHECK_LENGTHS)
    mask = torch.arange(max_len, device=device)[None, :] < (cu[1:] - cu[:-1])[:, None]
    ids = torch.randint(0, 30000, (n_seg, max_len), generator=torch.Generator().manual_seed(8))
    ids = ids.to(device)
    ref_packed, ref_cu, ref_max, ref_idx = ops.pack(ids, mask.long(), backend="reference")
    out = []
    for be in backends("pack", device):
        out.append(
            _exact(
                "pack",
                be,
                lambda b=be: ops.pack(ids, mask.long(), backend=b),
                (ref_packed, ref_cu, ref_max, ref_idx),
            )
        )
    for dtype in DTYPES:
        x = randn((int(cu[-1]), 384), 9, device, dtype)
        ref = torch_unpack(x, cu, seg, pos, max_len)
        for be in backends("unpack", device):
            fn = partial(ops.unpack, x, cu, max_len, backend=be)
            out.append(_exact("unpack", be, fn, ref, str(dtype).removeprefix("torch.")))
    return out


def _exact(op, backend, fn, expected, dtype="int64") -> Check:
    try:
        got = fn()
    except Exception as exc:  # report and go on
        return Check(op, "ragged", backend, dtype, float("nan"), 0.0, False, repr(exc)[:200])
    got_t = got if isinstance(got, tuple) else (got,)
    exp_t = expected if isinstance(expected, tuple) else (expected,)
    same = all(
        torch.equal(g, e) if isinstance(g, torch.Tensor) else g == e
        for g, e in zip(got_t, exp_t, strict=True)
    )
    return Check(op, "ragged", backend, dtype, 0.0 if same else float("inf"), 0.0, same)


# -- speed ----------------------------------------------------------------------------------


def per_call_us(fn: Callable[[], object], device, rounds: int) -> float:
    """Median microseconds per call: each round repeats ``fn`` enough to last ~5 ms."""
    fn()
    _common.synchronize(device)
    start = time.perf_counter()
    fn()
    _common.synchronize(device)
    reps = max(1, int(0.005 / max(time.perf_counter() - start, 1e-7)))
    timing = _common.time_rounds(lambda: [fn() for _ in range(reps)], rounds, 1, device)
    return timing.median / reps * 1e6


def speed_cases(device, n_tokens: int, hidden: int, dtype) -> dict[str, dict]:
    """op -> {"impls": {name: fn}, "bytes": counted bytes, "flops": counted flops or None}."""
    lengths = speed_lengths(n_tokens)
    cu, seg, pos, max_len = ragged(lengths, device)
    t, b, e = int(cu[-1]), len(lengths), torch.empty((), dtype=dtype).element_size()
    x, r = randn((t, hidden), 1, device, dtype), randn((t, hidden), 2, device, dtype)
    w, bias = randn((hidden,), 3, device, dtype), randn((hidden,), 4, device, dtype)
    heads, dim = hidden // 64, 64
    q, k, v = (randn((t, heads, dim), s, device, dtype) for s in (5, 6, 7))
    ids = torch.randint(0, 30000, (b, max_len), generator=torch.Generator().manual_seed(8))
    ids = ids.to(device)
    mask = (torch.arange(max_len, device=device)[None, :] < (cu[1:] - cu[:-1])[:, None]).long()
    impl = lambda op, be: _dispatch.resolve(op, device, be)  # noqa: E731
    cases = {
        "pool mean": (
            lambda be: lambda: impl("pool", be)(x, cu, "mean", False, 1e-12),
            lambda: torch_pool(x, cu, seg, "mean", False),
            t * hidden * e + b * hidden * e + (b + 1) * 4,
            None,
            "pool",
        ),
        "l2_normalize": (
            lambda be: lambda: impl("l2_normalize", be)(x, 1e-12),
            lambda: F.normalize(x, dim=-1, eps=1e-12),
            2 * t * hidden * e,
            None,
            "l2_normalize",
        ),
        "layer_norm +res": (
            lambda be: lambda: impl("layer_norm", be)(x, w, bias, 1e-12, r),
            lambda: torch_layer_norm(x, w, bias, 1e-12, r),
            3 * t * hidden * e + 2 * hidden * e,
            None,
            "layer_norm",
        ),
        "pack": (
            lambda be: lambda: impl("pack", be)(ids, mask),
            lambda: ops.reference.pack_ref(ids, mask),
            2 * b * max_len * 8 + 2 * t * 8 + (b + 1) * 4,
            None,
            "pack",
        ),
        "unpack": (
            lambda be: lambda: impl("unpack", be)(x, cu, max_len),
            lambda: torch_unpack(x, cu, seg, pos, max_len),
            t * hidden * e + b * max_len * hidden * e,
            None,
            "unpack",
        ),
        "varlen_attention": (
            lambda be: lambda: impl("varlen_attention", be)(q, k, v, cu, max_len, dim**-0.5),
            lambda: torch_padded_attention(q, k, v, cu, seg, pos, max_len, dim**-0.5),
            4 * t * hidden * e,
            4.0 * heads * dim * float(np.square(np.asarray(lengths, dtype=np.float64)).sum()),
            "varlen_attention",
        ),
    }
    return {"cases": cases, "tokens": t, "cu": cu, "max_len": max_len, "qkv": (q, k, v)}


def measure_speed(device, n_tokens, hidden, dtype, copy_gbs, rounds) -> list[Speed]:
    spec = speed_cases(device, n_tokens, hidden, dtype)
    name, out = str(dtype).removeprefix("torch."), []
    for label, (make, torch_fn, n_bytes, flops, op) in spec["cases"].items():
        torch_us = per_call_us(torch_fn, device, rounds)
        rows = [("torch", torch_us, "padded SDPA" if op == "varlen_attention" else "")]
        for be in backends(op, device):
            if be == "reference":
                continue
            try:
                rows.append((be, per_call_us(make(be), device, rounds), ""))
            except Exception as exc:  # report and go on
                rows.append((be, float("nan"), repr(exc)[:120]))
        if op == "varlen_attention":
            rows.extend(_torch_varlen_row(spec, device, rounds))
        for impl_name, us, note in rows:
            gbs = n_bytes / (us * 1e-6) / 1e9
            out.append(
                Speed(
                    label,
                    name,
                    hidden,
                    spec["tokens"],
                    impl_name,
                    us,
                    gbs,
                    100 * gbs / copy_gbs,
                    None if flops is None else flops / us / 1e6,
                    torch_us / us,
                    note,
                )
            )
    return out


def _torch_varlen_row(spec, device, rounds) -> list[tuple[str, float, str]]:
    varlen_attn = torch_varlen_attention()
    if varlen_attn is None or device.type != "cuda":
        return []
    q, k, v = spec["qkv"]
    cu, max_len = spec["cu"], spec["max_len"]
    try:
        us = per_call_us(lambda: varlen_attn(q, k, v, cu, cu, max_len, max_len), device, rounds)
    except Exception as exc:  # fp32 or an old torch: say why
        return [("torch varlen_attn", float("nan"), repr(exc)[:120])]
    return [("torch varlen_attn", us, "torch.nn.attention.varlen")]


# -- report ---------------------------------------------------------------------------------


def print_checks(checks: list[Check]) -> None:
    failed = [c for c in checks if not c.ok]
    by_backend: dict[str, list[Check]] = {}
    for c in checks:
        by_backend.setdefault(c.backend, []).append(c)
    print("correctness against float64 (error <= 2 x torch's own + atol; pack/unpack exact):")
    for be, rows in by_backend.items():
        bad = sum(not c.ok for c in rows)
        worst = max((c.error for c in rows if c.dtype == "float32"), default=0.0)
        print(f"  {be:<10} {len(rows) - bad:>4}/{len(rows)} ok   worst fp32 error {worst:.2e}")
    for c in failed:
        print(
            f"  FAIL {c.op} {c.case} {c.backend} {c.dtype}: error {c.error:.3g} vs torch's "
            f"{c.torch_error:.3g} {c.note}"
        )


def print_speeds(speeds: list[Speed], copy_gbs: float) -> None:
    print(f"speed (copy bandwidth measured now: {copy_gbs:,.0f} GB/s; GB/s from counted bytes):")
    print(
        f"  {'op':<17}{'dtype':<9}{'H':>5} {'impl':<18}{'us':>9}{'GB/s':>9}{'%copy':>7}"
        f"{'TFLOP/s':>9}{'x torch':>8}"
    )
    for s in speeds:
        tflops = "-" if s.tflops is None else f"{s.tflops:.1f}"
        print(
            f"  {s.op:<17}{s.dtype:<9}{s.hidden:>5} {s.impl:<18}{s.median_us:>9.1f}"
            f"{s.gbs:>9.0f}{s.pct_copy:>6.0f}%{tflops:>9}{s.speedup_vs_torch:>8.2f} {s.note}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on CPU with small sizes")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_ops.json")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_ops_check: torch sees no CUDA device; use --cpu for a dry run", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    print(
        f"backends on {device.type}: "
        + "; ".join(f"{op}: {', '.join(backends(op, device))}" for op in _dispatch.OPS)
    )
    checks = []
    for part in (check_pack_unpack, check_pool, check_l2_layer_norm, check_attention):
        checks.extend(part(device))
    print_checks(checks)
    speeds, copy_gbs = [], 0.0
    if not args.skip_speed:
        copy_gbs = _common.copy_bandwidth(device, 1 << (24 if args.cpu else 30))
        n_tokens, rounds = (4096, 3) if args.cpu else (65536, 10)
        dtypes = (torch.float32,) if args.cpu else (torch.float16, torch.float32)
        for dtype in dtypes:
            for hidden in (384, 1024):
                speeds.extend(measure_speed(device, n_tokens, hidden, dtype, copy_gbs, rounds))
        print_speeds(speeds, copy_gbs)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {
            "environment": _common.environment(device),
            "copy_gbs": copy_gbs,
            "checks": [asdict(c) for c in checks],
            "speeds": [asdict(s) for s in speeds],
        }
        (args.out / "gpu_ops.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
