"""Metrics: counters, gauges and histograms on a private prometheus_client registry.

Each service owns one :class:`MetricsRegistry`, so two services (or two tests) never share or
collide on metric names. ``snapshot()`` gives a plain dict (histograms with count, sum, mean and
p50/p95/p99 over a bounded window of recent values); ``prometheus_text()`` gives the text
exposition format for a scrape endpoint.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
WINDOW = 2048  # recent observations kept per histogram series for the snapshot's quantiles


class MetricsRegistry:
    """Named metrics on one ``CollectorRegistry``; creating a name twice returns the same metric.

    Args:
        namespace: prefix of every metric name in the Prometheus text.
    """

    def __init__(self, namespace: str = "mlservices") -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, object] = {}
        self._windows: dict[tuple[str, tuple[str, ...]], deque] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get(Gauge, name, doc, labels)

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets=LATENCY_BUCKETS
    ) -> Histogram:
        return self._get(Histogram, name, doc, labels, buckets=buckets)

    def _get(self, kind, name, doc, labels, **kwargs):
        with self._lock:
            if name not in self._metrics:
                self._metrics[name] = kind(
                    name,
                    doc,
                    list(labels),
                    namespace=self.namespace,
                    registry=self.registry,
                    **kwargs,
                )
            return self._metrics[name]

    # -- recording -----------------------------------------------------------------------------

    def inc(self, name: str, amount: float = 1.0, /, **labels: str) -> None:
        metric = self._metrics[name]
        (metric.labels(**labels) if labels else metric).inc(amount)

    def set(self, name: str, value: float, /, **labels: str) -> None:
        metric = self._metrics[name]
        (metric.labels(**labels) if labels else metric).set(value)

    def observe(self, name: str, value: float, /, **labels: str) -> None:
        metric = self._metrics[name]
        (metric.labels(**labels) if labels else metric).observe(value)
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            window = self._windows.setdefault(key, deque(maxlen=WINDOW))
            window.append(float(value))

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Every metric as plain numbers, keyed by name (and ``name{label=value}`` per series).

        Counters and gauges give their value; histograms give ``count``, ``sum``, ``mean`` and,
        over their recent window, ``p50``, ``p95``, ``p99`` and ``max``.
        """
        out: dict[str, object] = {}
        for family in self.registry.collect():
            kind = family.type
            for sample in family.samples:
                key = _series_key(sample.name.removeprefix(self.namespace + "_"), sample.labels)
                if kind == "histogram":
                    self._histogram_sample(out, family.name, sample)
                elif kind in ("counter", "gauge") and not sample.name.endswith("_created"):
                    out[key] = sample.value
        with self._lock:
            windows = {k: list(v) for k, v in self._windows.items()}
        for (name, labels), values in windows.items():
            entry = out.setdefault(_series_key(name, dict(labels)), {})
            if values:
                array = np.asarray(values)
                p50, p95, p99 = np.percentile(array, [50, 95, 99])
                entry.update(p50=float(p50), p95=float(p95), p99=float(p99), max=float(array.max()))
        return out

    def _histogram_sample(self, out: dict, family_name: str, sample) -> None:
        base = family_name.removeprefix(self.namespace + "_")
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        entry = out.setdefault(_series_key(base, labels), {})
        if sample.name.endswith("_count"):
            entry["count"] = sample.value
        elif sample.name.endswith("_sum"):
            entry["sum"] = sample.value
        if entry.get("count"):
            entry["mean"] = entry.get("sum", 0.0) / entry["count"]

    def prometheus_text(self) -> str:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry).decode("utf-8")


def _series_key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


class ServiceMetrics(MetricsRegistry):
    """The metric set of an embedding service (names without the namespace prefix):

    - ``requests_total{operation,status}``, ``request_latency_seconds{operation}``
    - ``queue_wait_seconds``, ``batch_tokens``, ``batch_texts``, ``tokens_total``,
      ``tokens_per_second``, ``padding_avoided_tokens_total``, ``oom_splits_total``
    - ``stage_seconds{stage}`` (tokenize, pack, forward, pool, copy back)
    - ``rejected_items_total{reason}``, ``repairs_total{kind}``
    - ``memory_rss_bytes``, ``gpu_memory_bytes``, ``gpu_utilization_percent``,
      ``queue_texts``, ``in_flight_requests``, ``token_budget``, ``state{state}``
    """

    def __init__(self, namespace: str = "mlservices") -> None:
        super().__init__(namespace)
        self.counter("requests_total", "requests by operation and outcome", ["operation", "status"])
        self.histogram("request_latency_seconds", "request latency", ["operation"])
        self.histogram("queue_wait_seconds", "time from queueing to the start of its batch")
        self.histogram("batch_tokens", "real tokens per packed batch", buckets=TOKEN_BUCKETS)
        self.histogram("batch_texts", "texts per packed batch", buckets=TOKEN_BUCKETS)
        self.histogram("stage_seconds", "time per data-path stage per batch", ["stage"])
        self.counter("tokens_total", "real tokens encoded")
        self.counter("padding_avoided_tokens_total", "pad tokens a padded batch would have run")
        self.counter("oom_splits_total", "batches split in half after an out-of-memory error")
        self.counter("rejected_items_total", "items refused by validation", ["reason"])
        self.counter("repairs_total", "repairs made by the lenient strategy", ["kind"])
        self.gauge("tokens_per_second", "throughput of the last batch")
        self.gauge("memory_rss_bytes", "resident memory of this process")
        self.gauge("gpu_memory_bytes", "GPU memory in use on the service's device")
        self.gauge("gpu_utilization_percent", "GPU utilisation on the service's device")
        self.gauge("queue_texts", "texts waiting to be batched")
        self.gauge("in_flight_requests", "requests accepted and not yet answered")
        self.gauge("token_budget", "current token budget per batch")
        self.gauge("state", "1 for the service's current state", ["state"])


__all__ = ["LATENCY_BUCKETS", "TOKEN_BUCKETS", "MetricsRegistry", "ServiceMetrics"]
