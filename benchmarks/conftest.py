"""Benchmark-suite setup: offline hub, the quick mode option, shared fixtures, JSON records.

Every pytest-benchmark JSON written from these suites carries, under ``mlservices``, the
environment of the run (device name, CPU flags, versions) and the peers that were skipped and
why. ``pytest benchmarks --bench-quick`` is the same as ``MLSERVICES_BENCH_QUICK=1``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

if not torch.cuda.is_available():
    # Triton kernels run under the interpreter without a GPU; set before triton decorates any.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from benchmarks import _common  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("mlservices benchmarks")
    group.addoption(
        "--bench-quick",
        action="store_true",
        help="tiny sizes and one round (CI), as MLSERVICES_BENCH_QUICK=1",
    )
    group.addoption(
        "--bench-device",
        default=os.environ.get("MLSERVICES_BENCH_DEVICE", "cpu"),
        help="device of the end-to-end suite (default cpu, or MLSERVICES_BENCH_DEVICE)",
    )


def pytest_configure(config):
    if config.getoption("--bench-quick"):
        os.environ[_common.QUICK_ENV] = "1"


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["mlservices"] = {
        "environment": _common.environment(config.getoption("--bench-device")),
        "quick": _common.quick_mode(),
        "skipped_peers": dict(_common.SKIPPED_PEERS),
    }


def pytest_terminal_summary(terminalreporter):
    if _common.SUMMARY_LINES or _common.SKIPPED_PEERS:
        terminalreporter.section("mlservices benchmarks (ratios are within this run)")
    for line in _common.SUMMARY_LINES:
        terminalreporter.write_line(line)
    for peer, reason in _common.SKIPPED_PEERS.items():
        terminalreporter.write_line(f"skipped peer {peer}: {reason}")


@pytest.fixture(scope="session")
def bench_device(pytestconfig) -> torch.device:
    return torch.device(pytestconfig.getoption("--bench-device"))


@pytest.fixture(scope="session")
def fp32_roofline(bench_device) -> dict[str, object]:
    """torch fp32 matmul GFLOP/s on MiniLM's linear shapes, measured once in this run."""
    if _common.quick_mode():
        return _common.matmul_roofline(bench_device, rounds=1, min_round_s=0.01)
    return _common.matmul_roofline(bench_device)
