"""Backend registry: which implementation of which op runs for a tensor's device.

Backends register themselves at import (reference always; the C++ extension and Triton when they
import). ``resolve`` picks the first available backend in priority order for the device type,
or checks an explicit request and says what this install has instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mlservices.errors import BackendUnavailableError

OPS = (
    "pack",
    "unpack",
    "pool",
    "l2_normalize",
    "layer_norm",
    "varlen_attention",
    "bias_gelu",
)
BACKENDS = ("triton", "cuda", "cpu", "reference")

# Automatic choice, fastest first, per device type. Interpreted Triton on CPU is never automatic.
_PRIORITY = {"cuda": ("triton", "cuda", "reference"), "cpu": ("cpu", "reference")}


@dataclass
class Backend:
    name: str
    device_types: tuple[str, ...]
    impls: dict[str, Callable] = field(default_factory=dict)


_REGISTRY: dict[str, Backend] = {}


def register(name: str, device_types: tuple[str, ...], impls: dict[str, Callable]) -> None:
    """Register (or extend) a backend with op implementations for the given device types."""
    unknown = set(impls) - set(OPS)
    assert not unknown, f"unknown ops {sorted(unknown)}"
    backend = _REGISTRY.setdefault(name, Backend(name, device_types))
    backend.device_types = tuple(sorted(set(backend.device_types) | set(device_types)))
    backend.impls.update(impls)


def backends_for(op: str, device_type: str) -> list[str]:
    """Backends that implement ``op`` for ``device_type``, automatic choice first."""
    order = _PRIORITY.get(device_type, ("reference",)) + BACKENDS
    names = [n for n in dict.fromkeys(order) if n in _REGISTRY]
    return [
        n
        for n in names
        if op in _REGISTRY[n].impls
        and (n == "reference" or device_type in _REGISTRY[n].device_types)
    ]


def resolve(op: str, device: torch.device, backend: str | None) -> Callable:
    """The implementation of ``op`` for a tensor on ``device``.

    Raises:
        BackendUnavailableError: ``backend`` is unknown or cannot run ``op`` on this device.
    """
    available = backends_for(op, device.type)
    if backend is None:
        auto = [n for n in available if n in _PRIORITY.get(device.type, ("reference",))]
        return _REGISTRY[auto[0]].impls[op]
    if backend not in BACKENDS:
        raise BackendUnavailableError(
            f"mlservices.{op}: unknown backend {backend!r}",
            hint=f"use one of {', '.join(BACKENDS)} or None (automatic)",
            backend=backend,
        )
    if backend not in available:
        raise BackendUnavailableError(
            f"mlservices.{op}: backend {backend!r} is not available for {device.type} tensors "
            f"in this install (available: {', '.join(available)})",
            hint="see `mlservices info`; build the extension or install triton to add backends",
            backend=backend,
            device=str(device),
        )
    return _REGISTRY[backend].impls[op]


def available_backends() -> dict[str, dict[str, list[str]]]:
    """``{op: {device_type: [backends, automatic choice first]}}`` for this install.

    Device types are ``cpu`` and, when torch sees a GPU, ``cuda``.
    """
    device_types = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return {op: {d: backends_for(op, d) for d in device_types} for op in OPS}
