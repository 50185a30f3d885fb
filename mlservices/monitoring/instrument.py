"""Named-operation instrumentation: ``async with instrumentation.operation("name"):`` records the
operation's latency, its count by outcome and feeds the latency alert."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator

from mlservices.monitoring.alerts import AlertManager
from mlservices.monitoring.metrics import MetricsRegistry


class Instrumentation:
    """Records ``operation_latency_seconds{name}`` and ``operations_total{name,status}``.

    ``status`` is ``ok`` or the exception's class name; the exception always propagates.
    """

    def __init__(self, metrics: MetricsRegistry, alerts: AlertManager | None = None) -> None:
        self.metrics = metrics
        self.alerts = alerts
        metrics.histogram(
            "operation_latency_seconds", "latency of instrumented operations", ["name"]
        )
        metrics.counter(
            "operations_total", "instrumented operations by outcome", ["name", "status"]
        )

    @contextlib.asynccontextmanager
    async def operation(self, name: str) -> AsyncIterator[None]:
        with self.sync_operation(name):
            yield

    @contextlib.contextmanager
    def sync_operation(self, name: str) -> Iterator[None]:
        began, status = time.perf_counter(), "ok"
        try:
            yield
        except BaseException as exc:
            status = type(exc).__name__
            raise
        finally:
            seconds = time.perf_counter() - began
            self.metrics.observe("operation_latency_seconds", seconds, name=name)
            self.metrics.inc("operations_total", name=name, status=status)
            if self.alerts is not None:
                self.alerts.observe("latency_ms", seconds * 1000.0)


__all__ = ["Instrumentation"]
