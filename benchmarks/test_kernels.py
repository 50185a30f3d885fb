"""Kernel benchmarks: every op x backend x size on a ragged length mix (pytest-benchmark).

Each case records the median time and, in ``extra_info``, the achieved GB/s from counted bytes
(memory-bound ops) or GFLOP/s from counted multiply-adds (attention), with the device, CPU flags,
versions, dtype and shape. Peers run in the same session: the ``reference`` backend (plain torch,
mlservices/ops/reference.py) and, where one exists, a plain-torch ``torch`` peer
(``F.layer_norm(x + residual)``; pad + ``scaled_dot_product_attention`` + unpad).

Run:  python -m pytest benchmarks/test_kernels.py --benchmark-json=out.json
Quick mode for CI (small sizes, one round, no timing assertions anywhere):
      MLSERVICES_BENCH_QUICK=1 python -m pytest benchmarks/test_kernels.py
"""

from __future__ import annotations

import os
import platform
from functools import cache

import pytest
import torch
import torch.nn.functional as F

import mlservices.ops as ops
from mlservices.ops import _cpp

QUICK = os.environ.get("MLSERVICES_BENCH_QUICK") == "1"
ROUNDS = 1 if QUICK else 7
TOKENS = [1_000] if QUICK else [1_000, 10_000, 100_000]
HIDDEN = [384] if QUICK else [384, 768, 1024]
# (heads, head_dim) per hidden size, as BERT-style encoders have them.
HEADS = {384: (12, 32), 768: (12, 64), 1024: (16, 64)}
# The reference and padded-SDPA attention peers loop over segments or pad: too slow past this.
ATTENTION_PEER_MAX_TOKENS = 10_000
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DTYPE = torch.float32


def _backends(op: str) -> list[str]:
    """Backends to time for op on this device: compiled ones present in this install, then peers."""
    names = [b for b in ops.available_backends()[op][DEVICE] if b != "triton" or DEVICE == "cuda"]
    if op in ("layer_norm", "varlen_attention"):
        names.append("torch")
    return names


@cache
def _environment() -> dict:
    """Device name, CPU flags and versions, recorded with every case."""
    flags = set()
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    env = {
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else model,
        "cpu_flags": sorted(flags & {"avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_tile"}),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if _cpp.BUILD_INFO is not None:
        env["mlservices_cpu_tier"] = _cpp.BUILD_INFO.get("cpu_capability")
        env["compiler"] = _cpp.BUILD_INFO.get("compiler")
    return env


@cache
def _lengths(n_tokens: int) -> tuple[int, ...]:
    """A ragged mix of segment lengths (1 to 256, most around 20-60) summing to n_tokens."""
    gen = torch.Generator().manual_seed(n_tokens)
    lengths, total = [], 0
    while total < n_tokens:
        n = int(torch.empty(1).log_normal_(3.7, 0.7, generator=gen).clamp(1, 256))
        n = min(n, n_tokens - total)
        lengths.append(n)
        total += n
    return tuple(lengths)


def _cu(lengths) -> torch.Tensor:
    return F.pad(torch.tensor(lengths).cumsum(0), (1, 0)).to(DEVICE, torch.int32)


def _rows(n_rows: int, n_cols: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_rows, n_cols, generator=gen).to(DEVICE, DTYPE)


def _run(benchmark, fn, info: dict, work: float, unit: str) -> None:
    """Time fn (median of ROUNDS after a warm-up) and record throughput and context."""
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(info)
    benchmark.extra_info.update(_environment())
    benchmark.extra_info["dtype"] = str(DTYPE).removeprefix("torch.")
    benchmark.extra_info[unit] = work / median / 1e9
    benchmark.extra_info["median_s"] = median


def _sync(fn):
    if DEVICE != "cuda":
        return fn

    def synced():
        out = fn()
        torch.cuda.synchronize()
        return out

    return synced


SIZES = [(t, h) for t in TOKENS for h in HIDDEN]
ELT = torch.finfo(DTYPE).bits // 8


@pytest.mark.parametrize("backend", _backends("pool"))
@pytest.mark.parametrize("n_tokens, hidden", SIZES)
def test_pool(benchmark, n_tokens, hidden, backend):
    lengths = _lengths(n_tokens)
    x, cu = _rows(n_tokens, hidden, 0), _cu(lengths)
    fn = _sync(lambda: ops.pool(x, cu, "mean", True, backend=backend, check_inputs=False))
    moved = (n_tokens + len(lengths)) * hidden * ELT
    info = {"op": "pool", "backend": backend, "tokens": n_tokens, "hidden": hidden}
    _run(benchmark, fn, info | {"segments": len(lengths), "bytes": moved}, moved, "GB/s")


@pytest.mark.parametrize("backend", _backends("l2_normalize"))
@pytest.mark.parametrize("n_tokens, hidden", SIZES)
def test_l2_normalize(benchmark, n_tokens, hidden, backend):
    x = _rows(n_tokens, hidden, 1)
    fn = _sync(lambda: ops.l2_normalize(x, backend=backend))
    moved = 2 * n_tokens * hidden * ELT
    info = {"op": "l2_normalize", "backend": backend, "tokens": n_tokens, "hidden": hidden}
    _run(benchmark, fn, info | {"bytes": moved}, moved, "GB/s")


@pytest.mark.parametrize("backend", _backends("layer_norm"))
@pytest.mark.parametrize("n_tokens, hidden", SIZES)
def test_layer_norm(benchmark, n_tokens, hidden, backend):
    x, residual = _rows(n_tokens, hidden, 2), _rows(n_tokens, hidden, 3)
    weight, bias = _rows(1, hidden, 4)[0], _rows(1, hidden, 5)[0]
    if backend == "torch":
        fn = _sync(lambda: F.layer_norm(x + residual, (hidden,), weight, bias, 1e-12))
    else:
        fn = _sync(lambda: ops.layer_norm(x, weight, bias, 1e-12, residual, backend=backend))
    moved = 3 * n_tokens * hidden * ELT
    info = {"op": "layer_norm", "backend": backend, "tokens": n_tokens, "hidden": hidden}
    _run(benchmark, fn, info | {"residual": True, "bytes": moved}, moved, "GB/s")


@pytest.mark.parametrize("backend", _backends("pack"))
@pytest.mark.parametrize("n_tokens", TOKENS)
def test_pack(benchmark, n_tokens, backend):
    lengths = _lengths(n_tokens)
    width = max(lengths)
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    ids = torch.randint(0, 30522, mask.shape).masked_fill(~mask, 0)
    ids, mask = ids.to(DEVICE), mask.to(DEVICE, torch.int64)
    fn = _sync(lambda: ops.pack(ids, mask, backend=backend))
    moved = 2 * mask.numel() * 8 + n_tokens * (8 + 8) + (len(lengths) + 1) * 4
    info = {"op": "pack", "backend": backend, "tokens": n_tokens, "padded": mask.numel()}
    _run(benchmark, fn, info | {"bytes": moved}, moved, "GB/s")


@pytest.mark.parametrize("backend", _backends("unpack"))
@pytest.mark.parametrize("n_tokens, hidden", SIZES)
def test_unpack(benchmark, n_tokens, hidden, backend):
    lengths = _lengths(n_tokens)
    x, cu = _rows(n_tokens, hidden, 6), _cu(lengths)
    fn = _sync(lambda: ops.unpack(x, cu, max(lengths), backend=backend))
    moved = (n_tokens + len(lengths) * max(lengths)) * hidden * ELT
    info = {"op": "unpack", "backend": backend, "tokens": n_tokens, "hidden": hidden}
    _run(benchmark, fn, info | {"bytes": moved}, moved, "GB/s")


def _padded_sdpa(q, k, v, lengths):
    """The plain-torch peer: pad to [B, heads, L, d], SDPA with a key mask, unpad."""
    n_seqs, width = len(lengths), max(lengths)
    mask = (
        torch.arange(width, device=q.device)[None, :]
        < torch.tensor(lengths, device=q.device)[:, None]
    )
    index = mask.flatten().nonzero().flatten()

    def pad(t):
        out = t.new_zeros(n_seqs * width, *t.shape[1:])
        out[index] = t
        return out.view(n_seqs, width, *t.shape[1:]).transpose(1, 2)

    out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=mask[:, None, None, :])
    return out.transpose(1, 2).reshape(n_seqs * width, *q.shape[1:])[index]


@pytest.mark.parametrize("backend", _backends("varlen_attention"))
@pytest.mark.parametrize("n_tokens, hidden", SIZES)
def test_varlen_attention(benchmark, n_tokens, hidden, backend):
    if backend in ("reference", "torch") and n_tokens > ATTENTION_PEER_MAX_TOKENS:
        pytest.skip(f"the {backend} peer is too slow past {ATTENTION_PEER_MAX_TOKENS} tokens")
    lengths = _lengths(n_tokens)
    heads, head_dim = HEADS[hidden]
    # q, k, v as strided views of one fused QKV projection, as the packed encoder has them.
    qkv = _rows(n_tokens, 3 * hidden, 7).view(n_tokens, 3, heads, head_dim)
    q, k, v = qkv.unbind(1)
    cu = _cu(lengths)
    if backend == "torch":
        fn = _sync(lambda: _padded_sdpa(q, k, v, lengths))
    else:
        fn = _sync(
            lambda: ops.varlen_attention(
                q, k, v, cu, max(lengths), backend=backend, check_inputs=False
            )
        )
    flops = sum(4 * n * n * head_dim * heads for n in lengths)
    info = {"op": "varlen_attention", "backend": backend, "tokens": n_tokens, "hidden": hidden}
    info |= {"heads": heads, "head_dim": head_dim, "segments": len(lengths), "flops": flops}
    _run(benchmark, fn, info, flops, "GFLOP/s")
