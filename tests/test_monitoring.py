"""Metrics registry, profiler, alerts, instrumentation and the TensorBoard writer (unit level;
service-level metrics are tested in test_service.py)."""

import asyncio
import logging
import time

import pytest
import torch

from mlservices.monitoring import (
    AlertManager,
    Instrumentation,
    MetricsRegistry,
    ServiceMetrics,
    StageProfiler,
    TensorBoardWriter,
)
from mlservices.settings import Settings


def test_snapshot_and_prometheus_text():
    metrics = ServiceMetrics(namespace="t")
    metrics.inc("requests_total", operation="embed_text", status="ok")
    metrics.inc("requests_total", 2, operation="embed_text", status="ok")
    metrics.set("token_budget", 4096)
    for value in (0.01, 0.02, 0.03, 0.5):
        metrics.observe("request_latency_seconds", value, operation="embed_text")
    snap = metrics.snapshot()
    assert snap["requests_total{operation=embed_text,status=ok}"] == 3
    assert snap["token_budget"] == 4096
    latency = snap["request_latency_seconds{operation=embed_text}"]
    assert latency["count"] == 4 and latency["sum"] == pytest.approx(0.56)
    assert latency["p50"] == pytest.approx(0.025) and latency["max"] == 0.5
    text = metrics.prometheus_text()
    assert 't_requests_total{operation="embed_text",status="ok"} 3.0' in text
    assert 't_request_latency_seconds_bucket{le="0.025",operation="embed_text"} 2.0' in text
    assert "# TYPE t_token_budget gauge" in text


def test_registries_are_private():
    a, b = ServiceMetrics(), ServiceMetrics()
    a.inc("tokens_total", 5)
    assert b.snapshot()["tokens_total"] == 0 and a.snapshot()["tokens_total"] == 5
    registry = MetricsRegistry()
    assert registry.counter("x", "doc") is registry.counter("x", "doc")


def test_profiler_times_stages_on_cpu():
    metrics = ServiceMetrics()
    profiler = StageProfiler(torch.device("cpu"), metrics)
    assert not profiler.uses_events
    for _ in range(3):
        with profiler.stage("forward"):
            time.sleep(0.002)
    summary = profiler.summary()
    assert summary["forward"]["count"] == 3 and summary["forward"]["mean_s"] >= 0.002
    assert metrics.snapshot()["stage_seconds{stage=forward}"]["count"] == 3


def test_alerts_fire_once_per_crossing(caplog):
    fired = []
    alerts = AlertManager.from_settings(
        Settings(alert_latency_ms=100, alert_memory_mb=10), [fired.append]
    )
    with caplog.at_level(logging.WARNING, logger="mlservices.monitoring.alerts"):
        assert alerts.observe("latency_ms", 50) is None
        assert alerts.observe("latency_ms", 150).threshold == 100
        assert alerts.observe("latency_ms", 200) is None  # still above: no second alert
        alerts.observe("latency_ms", 10)
        alerts.observe("latency_ms", 300)
        alerts.observe("memory_mb", 11)
        assert alerts.observe("gpu_utilization", 99) is None  # no threshold configured
    assert [(a.name, a.value) for a in fired] == [
        ("latency_ms", 150),
        ("latency_ms", 300),
        ("memory_mb", 11),
    ]
    assert caplog.text.count("alert: latency_ms is") == 2


def test_a_failing_alert_callback_is_logged_not_raised(caplog):
    alerts = AlertManager({"latency_ms": 1.0}, [lambda alert: 1 / 0])
    assert alerts.observe("latency_ms", 2.0) is not None
    assert "alert callback" in caplog.text


def test_instrumentation_counts_outcomes():
    metrics = MetricsRegistry()
    fired = []
    instrumentation = Instrumentation(metrics, AlertManager({"latency_ms": 1.0}, [fired.append]))

    async def run():
        async with instrumentation.operation("search"):
            await asyncio.sleep(0.005)
        with pytest.raises(KeyError):
            async with instrumentation.operation("search"):
                raise KeyError("x")

    asyncio.run(run())
    snap = metrics.snapshot()
    assert snap["operations_total{name=search,status=ok}"] == 1
    assert snap["operations_total{name=search,status=KeyError}"] == 1
    assert snap["operation_latency_seconds{name=search}"]["count"] == 2
    assert fired and fired[0].name == "latency_ms"


def test_tensorboard_writer(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mlservices.monitoring.tensorboard"):
        writer = TensorBoardWriter(str(tmp_path / "tb"))
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        assert not writer.enabled and "tensorboard is not installed" in caplog.text
    else:
        assert writer.enabled
    writer.write({"tokens_total": 5.0, "latency": {"mean": 0.1, "p95": 0.2}}, step=1)
    writer.close()
    assert not TensorBoardWriter(None).enabled
