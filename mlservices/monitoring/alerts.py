"""Threshold alerts: a callback and a log warning when a watched value crosses its threshold.

An alert fires when a value goes above its threshold and re-arms once a value is back at or
below it, so a sustained breach fires once, not on every observation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mlservices.settings import Settings

logger = logging.getLogger(__name__)

UNITS = {"latency_ms": "ms", "memory_mb": "MiB", "gpu_utilization": "%"}


@dataclass(frozen=True)
class Alert:
    """One threshold crossing."""

    name: str
    value: float
    threshold: float
    message: str
    timestamp: float = field(default_factory=time.time)


AlertCallback = Callable[[Alert], None]


class AlertManager:
    """Watches named values against thresholds.

    Args:
        thresholds: ``{name: threshold}``; a None threshold disables that alert.
        callbacks: called with each :class:`Alert` (exceptions are logged, never raised).

    Example:
        >>> alerts = AlertManager({"latency_ms": 250.0}, [print])
        >>> alerts.observe("latency_ms", 300.0).name
        'latency_ms'
    """

    def __init__(
        self, thresholds: dict[str, float | None], callbacks: list[AlertCallback] | None = None
    ) -> None:
        self.thresholds = {k: float(v) for k, v in thresholds.items() if v is not None}
        self.callbacks = list(callbacks or [])
        self.fired: deque[Alert] = deque(maxlen=256)
        self._breached: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, callbacks: list[AlertCallback] | None = None
    ) -> AlertManager:
        """Latency (ms), process memory (MiB) and GPU utilisation (%) thresholds of settings."""
        return cls(
            {
                "latency_ms": settings.alert_latency_ms,
                "memory_mb": settings.alert_memory_mb,
                "gpu_utilization": settings.alert_gpu_utilization,
            },
            callbacks,
        )

    def add_callback(self, callback: AlertCallback) -> None:
        self.callbacks.append(callback)

    def observe(self, name: str, value: float | None) -> Alert | None:
        """Compare ``value`` with the threshold of ``name``; returns the alert if one fired."""
        threshold = self.thresholds.get(name)
        if threshold is None or value is None:
            return None
        with self._lock:
            if value <= threshold:
                self._breached.discard(name)
                return None
            if name in self._breached:
                return None
            self._breached.add(name)
        unit = UNITS.get(name, "")
        alert = Alert(
            name,
            float(value),
            threshold,
            f"{name} is {value:.1f}{unit}, above the threshold {threshold:g}{unit}",
        )
        self.fired.append(alert)
        logger.warning("alert: %s", alert.message)
        for callback in list(self.callbacks):
            try:
                callback(alert)
            except Exception:
                logger.exception("alert callback %r failed", callback)
        return alert


__all__ = ["Alert", "AlertCallback", "AlertManager"]
