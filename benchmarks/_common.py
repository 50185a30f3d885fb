"""Helpers shared by every benchmark suite (end to end, kernels, the GPU check).

The API below is stable; suites import from here rather than measuring their own way:

- ``quick_mode()``, ``rounds(full)``: CI's quick mode (``MLSERVICES_BENCH_QUICK=1`` or
  ``pytest --bench-quick``): tiny sizes, one round, no timing assertions.
- ``record(benchmark, device, dtype, **sizes)``: the environment every result must carry
  (device name, CPU flags, versions, dtype, sizes) into ``benchmark.extra_info``.
- ``run_timed(benchmark, fn, rounds)``: pytest-benchmark's pedantic run, timed by us too, so a
  median with p20/p80 exists also under ``--benchmark-disable``.
- ``record_rate(benchmark, timing, bytes_moved=..., flops=..., items=...)``: GB/s, GFLOP/s or
  items/s from counted bytes, flops or items, and the ``throughput`` value the comparer reads.
- ``copy_bandwidth(device)``: the device-to-device copy GB/s to set kernel GB/s against.
- ``SKIPPED_PEERS[peer] = why`` and ``SUMMARY_LINES.append(line)``: shown at the end of the
  pytest run; skipped peers also go into the JSON.
- ``shared_data(name)``: files of ``../shared/data`` (``MLSERVICES_SHARED_DATA`` overrides).

Keys that ``benchmarks.compare`` reads from ``extra_info``: ``throughput`` (higher is better),
``peak_memory_mib`` (lower is better), ``quick`` and ``env.device``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mlservices.bench import (
    PeakMemory,
    Timing,
    encoder_flops,
    environment,
    matmul_roofline,
    min_cosine,
    synchronize,
    time_rounds,
)

__all__ = [
    "PeakMemory",
    "RESULTS_DIR",
    "SKIPPED_PEERS",
    "SUMMARY_LINES",
    "Timing",
    "copy_bandwidth",
    "encoder_flops",
    "environment",
    "matmul_roofline",
    "min_cosine",
    "quick_mode",
    "record",
    "record_rate",
    "rounds",
    "run_timed",
    "shared_data",
    "synchronize",
    "time_rounds",
]

QUICK_ENV = "MLSERVICES_BENCH_QUICK"
# What this pytest run noted for the terminal summary and the JSON (see benchmarks/conftest.py).
SKIPPED_PEERS: dict[str, str] = {}
SUMMARY_LINES: list[str] = []
RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


def quick_mode() -> bool:
    """True in CI's quick mode: tiny sizes, one round, nothing timed is asserted."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def rounds(full: int) -> int:
    """Timed rounds for a suite: ``full`` normally, 1 in quick mode."""
    return 1 if quick_mode() else full


def shared_data(name: str) -> Path | None:
    """A file of the shared evaluation data, or None when it is not on this machine."""
    default = REPO_ROOT.parent / "shared" / "data"
    path = Path(os.environ.get("MLSERVICES_SHARED_DATA", default)) / name
    return path if path.exists() else None


def record(
    benchmark,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    **sizes: object,
) -> dict[str, object]:
    """Put the environment of this result into ``benchmark.extra_info`` and return it.

    Args:
        benchmark: the pytest-benchmark fixture.
        device: where the measured code ran.
        dtype: the compute dtype.
        **sizes: problem sizes (tokens, hidden, texts, ...), recorded as given.
    """
    env = environment(device, dtype, **sizes)
    benchmark.extra_info["env"] = env
    benchmark.extra_info["quick"] = quick_mode()
    return env


def run_timed(
    benchmark,
    fn: Callable[[], object],
    n_rounds: int,
    device: str | torch.device = "cpu",
    warmup: int = 0,
) -> Timing:
    """Time ``fn`` through ``benchmark.pedantic`` (one call per round) and return our own
    per-round wall times, device synchronised; with ``--benchmark-disable`` ``fn`` runs once."""
    seconds: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)

    benchmark.pedantic(timed, rounds=n_rounds, iterations=1, warmup_rounds=warmup)
    timing = Timing(seconds[warmup:] or seconds)
    benchmark.extra_info.update(timing.summary())
    return timing


def record_rate(
    benchmark,
    timing: Timing,
    *,
    bytes_moved: float | None = None,
    flops: float | None = None,
    items: float | None = None,
    item_unit: str = "items/s",
) -> dict[str, float]:
    """Rates at the median, p20 and p80 times from counted work; sets ``throughput``.

    The ``throughput`` value the comparer tracks is, in order of preference, items/s, GB/s or
    GFLOP/s (whichever is given first in that order).
    """
    rates: dict[str, float] = {}
    for key, work, scale in (
        (item_unit, items, 1.0),
        ("GB/s", bytes_moved, 1e9),
        ("GFLOP/s", flops, 1e9),
    ):
        if work is None:
            continue
        rates[key] = work / timing.median / scale
        rates[f"{key} p20"] = work / timing.p80 / scale
        rates[f"{key} p80"] = work / timing.p20 / scale
        if "throughput" not in benchmark.extra_info:
            benchmark.extra_info["throughput"] = rates[key]
            benchmark.extra_info["throughput_unit"] = key
    benchmark.extra_info.update(rates)
    return rates


def copy_bandwidth(
    device: str | torch.device = "cpu", n_bytes: int = 1 << 28, n_rounds: int = 10
) -> float:
    """Device-to-device copy bandwidth in GB/s: ``dst.copy_(src)`` of an ``n_bytes`` buffer,
    counted as read + write (2 * n_bytes per copy), median of ``n_rounds``."""
    dev = torch.device(device)
    if quick_mode():
        n_bytes, n_rounds = min(n_bytes, 1 << 24), 1
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=dev).fill_(1.0)
    dst = torch.empty_like(src)
    timing = time_rounds(lambda: dst.copy_(src), n_rounds, warmup=2, device=dev)
    return 2 * src.numel() * 4 / timing.median / 1e9
