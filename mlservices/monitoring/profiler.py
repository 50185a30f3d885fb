"""Per-stage timing of the data path: tokenize, pack, forward, pool, copy back.

On a CUDA device a stage is timed with a pair of ``torch.cuda.Event``s (device time, resolved in
``flush()`` after the batch); on the CPU with ``time.perf_counter``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mlservices.monitoring.metrics import MetricsRegistry

STAGES = ("tokenize", "pack", "forward", "pool", "copy_back")


@dataclass
class StageTotals:
    count: int = 0
    total_s: float = 0.0
    last_s: float = 0.0

    @property
    def mean_s(self) -> float:
        return self.total_s / self.count if self.count else 0.0


class StageProfiler:
    """Times named stages and feeds ``stage_seconds{stage}`` of a metrics registry.

    Args:
        device: the device the stages run on; CUDA uses device events.
        metrics: a registry with a ``stage_seconds`` histogram labelled by ``stage``, or None.

    Example:
        >>> profiler = StageProfiler(torch.device("cpu"))
        >>> with profiler.stage("forward"):
        ...     hidden = encoder.forward(batch)
        >>> profiler.flush()["forward"].count
        1
    """

    def __init__(self, device: torch.device, metrics: MetricsRegistry | None = None) -> None:
        self.uses_events = torch.device(device).type == "cuda"
        self.metrics = metrics
        self._totals: dict[str, StageTotals] = {}
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str, host: bool = False) -> Iterator[None]:
        """Time the block as stage ``name``; ``host=True`` forces wall-clock timing (CPU work)."""
        if self.uses_events and not host:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            try:
                yield
            finally:
                end.record()
                with self._lock:
                    self._pending.append((name, start, end))
            return
        began = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - began)

    def record(self, name: str, seconds: float) -> None:
        with self._lock:
            totals = self._totals.setdefault(name, StageTotals())
            totals.count += 1
            totals.total_s += seconds
            totals.last_s = seconds
        if self.metrics is not None:
            self.metrics.observe("stage_seconds", seconds, stage=name)

    def flush(self) -> dict[str, StageTotals]:
        """Resolve pending device events (waits for them) and return the totals per stage."""
        with self._lock:
            pending, self._pending = self._pending, []
        for name, start, end in pending:
            end.synchronize()
            self.record(name, start.elapsed_time(end) / 1000.0)
        with self._lock:
            return {
                name: StageTotals(t.count, t.total_s, t.last_s) for name, t in self._totals.items()
            }

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {count, total_s, mean_s, last_s}}`` after resolving pending events."""
        return {
            name: {"count": t.count, "total_s": t.total_s, "mean_s": t.mean_s, "last_s": t.last_s}
            for name, t in self.flush().items()
        }


__all__ = ["STAGES", "StageProfiler", "StageTotals"]
