"""What this machine has: CPU model and the instruction sets that matter, GPUs, memory."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import torch

# CPU flags that change which kernels and dtypes are fast.
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, object]:
    """``{'model': str, 'cores': int, 'flags': {flag: bool}}`` from /proc/cpuinfo (Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return {
        "model": model,
        "cores": os.cpu_count() or 1,
        "flags": {f: f in flags for f in CPU_FLAGS_OF_INTEREST},
    }


def cpu_has_fast_bf16() -> bool:
    """True when bf16 matmuls run natively (AMX or AVX512-BF16), so bf16 beats fp32 on CPU."""
    flags = cpu_info()["flags"]
    return bool(flags["amx_bf16"] or flags["avx512_bf16"])


def gpu_info() -> list[dict[str, object]]:
    """One entry per visible CUDA device: name, capability, total memory."""
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append(
            {
                "index": i,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
            }
        )
    return out


def device_name(device: torch.device | str | None = None) -> str:
    """A short, file-name-safe name for result folders: the GPU name or the CPU model."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = str(cpu_info()["model"])
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
    while "--" in safe:
        safe = safe.replace("--", "-")
    return safe or dev.type
