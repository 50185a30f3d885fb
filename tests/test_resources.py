"""ResourceManager: measurements, token budget from free memory, and memory limits."""

import time

import numpy as np
import pytest

from mlservices.errors import ResourceExhaustedError
from mlservices.optimization import ResourceManager, activation_bytes_per_token
from mlservices.optimization.resources import MIB
from mlservices.settings import Settings


def test_monitor_measures_memory_and_cpu():
    manager = ResourceManager(Settings(), "cpu")
    with manager.monitor(interval_s=0.01) as report:
        block = np.ones(96 * MIB // 8)  # 96 MiB, touched
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            block.sum()
        del block
    assert report.end is not None and report.seconds >= 0.2 and report.samples > 0
    assert report.peak_rss_bytes - report.start.rss_bytes >= 80 * MIB
    assert report.cpu_percent > 20
    assert report.start.system_total_bytes > 0 and report.end.system_available_bytes > 0
    assert report.start.gpu_memory_used_bytes is None  # a CPU device has no GPU figures
    assert report.end.peak_rss_bytes >= report.end.rss_bytes


def test_token_budget_is_clamped():
    manager = ResourceManager(Settings(), "cpu")
    per_token = activation_bytes_per_token(
        {"hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12}, 256, 4
    )
    assert per_token == (6 * 384 + 2 * 1536) * 4 + 12 * 256 * 4
    assert manager.token_budget(per_token, floor=256, ceiling=8192) == 8192
    assert manager.token_budget(10**15, floor=256, ceiling=8192) == 256
    tight = ResourceManager(Settings(memory_limit_mb=1), "cpu")
    assert tight.free_bytes() == 0  # RSS is already above 1 MiB


def test_memory_limit_refuses_with_a_clear_error():
    manager = ResourceManager(Settings(memory_limit_mb=64), "cpu")
    with pytest.raises(ResourceExhaustedError) as info:
        manager.check(1000, "embed_batch", bytes_per_token=1024)
    err = info.value
    assert "embed_batch refused" in str(err) and "memory_limit_mb=64" in str(err)
    assert "raise memory_limit_mb" in err.hint
    assert err.context["limit"] == 64 * MIB and err.context["current"] > 64 * MIB
    assert err.context["device"] == "cpu"
    ResourceManager(Settings(memory_limit_mb=10**6), "cpu").check(1000, "x", 1024)


def test_the_device_follows_the_settings():
    import torch

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert ResourceManager(Settings()).device.type == auto
    assert ResourceManager(Settings(device="cpu")).device.type == "cpu"
