"""Monitoring: metrics (snapshot and Prometheus text), a per-stage profiler, named-operation
instrumentation, threshold alerts and an optional TensorBoard writer."""

from mlservices.monitoring.alerts import Alert, AlertManager
from mlservices.monitoring.instrument import Instrumentation
from mlservices.monitoring.metrics import MetricsRegistry, ServiceMetrics
from mlservices.monitoring.profiler import STAGES, StageProfiler
from mlservices.monitoring.tensorboard import TensorBoardWriter

__all__ = [
    "STAGES",
    "Alert",
    "AlertManager",
    "Instrumentation",
    "MetricsRegistry",
    "ServiceMetrics",
    "StageProfiler",
    "TensorBoardWriter",
]
