"""Resource management: measure CPU and GPU memory and utilisation, size the batch token budget
from free memory, and refuse work that a configured memory limit cannot hold.

GPU figures come from NVML (``pynvml``, the ``gpu`` extra) when it is installed and finds a
driver, else from ``torch.cuda``; on a CPU device they are None.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import torch

from mlservices.errors import ResourceExhaustedError
from mlservices.settings import Settings

logger = logging.getLogger(__name__)

MIB = 2**20


@dataclass
class ResourceUsage:
    """One measurement. GPU fields are None without a GPU device (or without a way to read it)."""

    rss_bytes: int
    peak_rss_bytes: int
    system_available_bytes: int
    system_total_bytes: int
    cpu_percent: float
    system_cpu_percent: float
    gpu_memory_used_bytes: int | None = None
    gpu_memory_total_bytes: int | None = None
    gpu_utilization: float | None = None
    timestamp: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


@dataclass
class MonitorReport:
    """What happened during one ``ResourceManager.monitor()`` block.

    ``cpu_percent`` is this process's average over the block (100 = one core busy);
    ``peak_rss_bytes`` is the highest RSS sampled during the block.
    """

    start: ResourceUsage
    end: ResourceUsage | None = None
    peak_rss_bytes: int = 0
    peak_gpu_memory_bytes: int | None = None
    max_gpu_utilization: float | None = None
    cpu_percent: float = 0.0
    seconds: float = 0.0
    samples: int = 0

    @property
    def rss_delta_bytes(self) -> int:
        return (self.end.rss_bytes if self.end else self.start.rss_bytes) - self.start.rss_bytes


class GpuProbe:
    """Memory and utilisation of one CUDA device through NVML, or torch.cuda without it."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.index = device.index if device.index is not None else 0
        self._nvml_handle = self._open_nvml()

    def _open_nvml(self):
        try:
            import pynvml
        except ImportError:
            logger.info(
                "pynvml is not installed; GPU utilisation is unavailable (pip install "
                "mlservices[gpu])"
            )
            return None
        try:
            pynvml.nvmlInit()
            return pynvml.nvmlDeviceGetHandleByIndex(self.index)
        except pynvml.NVMLError as exc:
            logger.info("NVML unavailable (%s); GPU memory comes from torch.cuda", exc)
            return None

    def read(self) -> tuple[int | None, int | None, float | None]:
        """(used bytes, total bytes, utilisation percent or None)."""
        if self._nvml_handle is not None:
            import pynvml

            memory = pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handle)
            rates = pynvml.nvmlDeviceGetUtilizationRates(self._nvml_handle)
            return int(memory.used), int(memory.total), float(rates.gpu)
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(self.device)
            return int(total - free), int(total), None
        return None, None, None

    def free_bytes(self) -> int | None:
        used, total, _ = self.read()
        return None if used is None or total is None else total - used


def _settings_device(settings: Settings) -> str:
    if settings.device != "auto":
        return settings.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def activation_bytes_per_token(config: dict, max_seq_length: int, itemsize: int) -> int:
    """A generous estimate of the activation memory one packed token costs in a BERT forward:
    hidden-sized tensors, the FFN intermediate, and one row of float32 attention scores per head.
    """
    hidden = int(config.get("hidden_size", 768))
    intermediate = int(config.get("intermediate_size", 4 * hidden))
    heads = int(config.get("num_attention_heads", 12))
    return (6 * hidden + 2 * intermediate) * itemsize + heads * max_seq_length * 4


class ResourceManager:
    """Measures resources and enforces the memory limits of a :class:`Settings`.

    Args:
        settings: ``memory_limit_mb``, ``gpu_memory_limit_mb`` and ``memory_fraction`` are used.
        device: the device the work runs on (CPU memory only for ``cpu``); None takes
            ``settings.device`` (``auto``: a GPU when torch sees one).

    Example:
        >>> manager = ResourceManager(Settings())
        >>> with manager.monitor() as usage:
        ...     work()
        >>> usage.peak_rss_bytes, usage.cpu_percent
    """

    def __init__(self, settings: Settings, device: torch.device | str | None = None) -> None:
        self.settings = settings
        self.device = torch.device(device if device is not None else _settings_device(settings))
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._gpu = GpuProbe(self.device) if self.device.type == "cuda" else None

    def usage(self) -> ResourceUsage:
        """Measure now. CPU percentages cover the time since the previous ``usage()`` call."""
        memory = self._process.memory_info()
        system = psutil.virtual_memory()
        gpu_used, gpu_total, gpu_util = self._gpu.read() if self._gpu else (None, None, None)
        return ResourceUsage(
            rss_bytes=int(memory.rss),
            peak_rss_bytes=max(_peak_rss_bytes(), int(memory.rss)),
            system_available_bytes=int(system.available),
            system_total_bytes=int(system.total),
            cpu_percent=self._process.cpu_percent(None),
            system_cpu_percent=psutil.cpu_percent(None),
            gpu_memory_used_bytes=gpu_used,
            gpu_memory_total_bytes=gpu_total,
            gpu_utilization=gpu_util,
        )

    @contextlib.contextmanager
    def monitor(self, interval_s: float = 0.05) -> Iterator[MonitorReport]:
        """Measure the block: start and end usage, sampled peak memory, average CPU use.

        The report is filled in when the block exits; a sampler thread reads memory (and GPU
        utilisation) every ``interval_s`` seconds meanwhile.
        """
        process = psutil.Process()
        process.cpu_percent(None)
        report = MonitorReport(start=self.usage())
        report.peak_rss_bytes = report.start.rss_bytes
        report.peak_gpu_memory_bytes = report.start.gpu_memory_used_bytes
        report.max_gpu_utilization = report.start.gpu_utilization
        stop = threading.Event()
        sampler = threading.Thread(
            target=self._sample,
            args=(report, stop, interval_s),
            name="mlservices-monitor",
            daemon=True,
        )
        started = time.perf_counter()
        sampler.start()
        try:
            yield report
        finally:
            stop.set()
            sampler.join()
            report.seconds = time.perf_counter() - started
            report.cpu_percent = process.cpu_percent(None)
            report.end = self.usage()
            self._fold(report, report.end)

    def _sample(self, report: MonitorReport, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            rss = int(self._process.memory_info().rss)
            gpu_used, _, gpu_util = self._gpu.read() if self._gpu else (None, None, None)
            self._fold(report, ResourceUsage(rss, rss, 0, 0, 0.0, 0.0, gpu_used, None, gpu_util))
            report.samples += 1

    @staticmethod
    def _fold(report: MonitorReport, usage: ResourceUsage) -> None:
        report.peak_rss_bytes = max(report.peak_rss_bytes, usage.rss_bytes)
        if usage.gpu_memory_used_bytes is not None:
            report.peak_gpu_memory_bytes = max(
                report.peak_gpu_memory_bytes or 0, usage.gpu_memory_used_bytes
            )
        if usage.gpu_utilization is not None:
            report.max_gpu_utilization = max(
                report.max_gpu_utilization or 0.0, usage.gpu_utilization
            )

    # -- limits and budgets ------------------------------------------------------------------

    def check(self, tokens: int, operation: str, bytes_per_token: int = 0) -> None:
        """Refuse ``operation`` when it would push memory past a configured limit.

        Args:
            tokens: tokens the operation will put in one batch at most.
            operation: named in the error.
            bytes_per_token: estimated activation memory per token (0: only current use counts).

        Raises:
            ResourceExhaustedError: with the limit, the current use and what to do.
        """
        need = tokens * bytes_per_token
        if self.settings.memory_limit_mb is not None:
            rss = int(self._process.memory_info().rss)
            self._enforce(
                "memory_limit_mb",
                self.settings.memory_limit_mb,
                rss,
                need,
                operation,
                "process memory (RSS)",
                "cpu",
            )
        if self.settings.gpu_memory_limit_mb is not None and self._gpu is not None:
            used = self._gpu.read()[0]
            if used is not None:
                self._enforce(
                    "gpu_memory_limit_mb",
                    self.settings.gpu_memory_limit_mb,
                    used,
                    need,
                    operation,
                    "GPU memory",
                    str(self.device),
                )

    @staticmethod
    def _enforce(setting, limit_mb, current, need, operation, what, device) -> None:
        if current + need <= limit_mb * MIB:
            return
        raise ResourceExhaustedError(
            f"{operation} refused: {what} is {current / MIB:.1f} MiB and this work needs about "
            f"{need / MIB:.1f} MiB more, over {setting}={limit_mb:g} MiB",
            hint=f"raise {setting}, send fewer or shorter texts, lower max_batch_tokens, or free "
            "memory held elsewhere in this process",
            limit=limit_mb * MIB,
            current=current,
            needed=need,
            device=device,
            setting=setting,
        )

    def free_bytes(self) -> int:
        """Memory available to new work: free device memory, bounded by the configured limit."""
        if self._gpu is not None:
            free = self._gpu.free_bytes()
            if free is None:
                free = psutil.virtual_memory().available
            limit_mb = self.settings.gpu_memory_limit_mb
            if limit_mb is not None:
                used = self._gpu.read()[0] or 0
                free = min(free, max(int(limit_mb * MIB) - used, 0))
            return int(free)
        free = int(psutil.virtual_memory().available)
        if self.settings.memory_limit_mb is not None:
            rss = int(self._process.memory_info().rss)
            free = min(free, max(int(self.settings.memory_limit_mb * MIB) - rss, 0))
        return free

    def token_budget(self, bytes_per_token: int, floor: int, ceiling: int) -> int:
        """Tokens per batch: ``memory_fraction`` of free memory over the per-token cost,
        clamped to ``[floor, ceiling]``."""
        estimate = int(self.settings.memory_fraction * self.free_bytes() / max(bytes_per_token, 1))
        budget = max(floor, min(ceiling, estimate))
        logger.debug(
            "token budget %d (estimate %d, floor %d, ceiling %d)", budget, estimate, floor, ceiling
        )
        return budget


__all__ = [
    "GpuProbe",
    "MonitorReport",
    "ResourceManager",
    "ResourceUsage",
    "activation_bytes_per_token",
]
