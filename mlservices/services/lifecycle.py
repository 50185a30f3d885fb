"""Service lifecycle: start (load, warm up, READY), stop (drain, release, STOPPED), and
``async with service:``; helpers to run several services together and to mark a service
degraded or recovered.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from mlservices.errors import StateError
from mlservices.settings import Settings
from mlservices.state import ServiceState, StateMachine

logger = logging.getLogger(__name__)


class ManagedService(ABC):
    """A service with a checked lifecycle.

    Subclasses implement ``_on_start`` (load and warm up) and ``_on_stop`` (drain and release).
    ``start()`` moves CREATED -> STARTING -> READY (FAILED if loading raises); ``stop()`` moves
    to STOPPING -> STOPPED (FAILED if releasing raises). Any other order raises StateError.

    Args:
        settings: the service's configuration; None reads ``Settings()`` (env and file).
    """

    name = "service"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.machine = StateMachine(self.name)

    @property
    def state(self) -> ServiceState:
        return self.machine.state

    async def start(self) -> None:
        """Load and warm up; READY on success.

        Raises:
            StateError: the service was started before.
            ModelLoadError, ValidationError: loading failed (the service is then FAILED).
        """
        self.machine.transition(ServiceState.STARTING)
        try:
            await self._on_start()
        except BaseException:
            self.machine.transition(ServiceState.FAILED)
            raise
        self.machine.transition(ServiceState.READY)

    async def stop(self) -> None:
        """Drain in-flight work, release memory; STOPPED. Stopping a stopped service is a no-op.

        Raises:
            StateError: the service is CREATED or STARTING (nothing to stop yet).
        """
        if self.state is ServiceState.STOPPED:
            return
        self.machine.transition(ServiceState.STOPPING)
        try:
            await self._on_stop()
        except BaseException:
            self.machine.transition(ServiceState.FAILED)
            raise
        self.machine.transition(ServiceState.STOPPED)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    @abstractmethod
    async def _on_start(self) -> None:
        """Load what the service needs and warm it up."""

    @abstractmethod
    async def _on_stop(self) -> None:
        """Finish or fail in-flight work and release what the service holds."""


def mark_degraded(machine: StateMachine, reason: str) -> bool:
    """READY -> DEGRADED (serving on reduced capacity); False when not READY."""
    if machine.state is not ServiceState.READY:
        return False
    try:
        machine.transition(ServiceState.DEGRADED)
    except StateError:  # a concurrent stop or failure won the race; that transition stands
        return False
    logger.warning("%s service degraded: %s", machine.name, reason)
    return True


def mark_recovered(machine: StateMachine) -> bool:
    """DEGRADED -> READY; False when not DEGRADED."""
    if machine.state is not ServiceState.DEGRADED:
        return False
    try:
        machine.transition(ServiceState.READY)
    except StateError:
        return False
    return True


@contextlib.asynccontextmanager
async def running(*services: ManagedService) -> AsyncIterator[tuple[ManagedService, ...]]:
    """Start services in order and stop them in reverse order, also when the block raises or a
    later start fails."""
    started: list[ManagedService] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        yield services
    finally:
        for service in reversed(started):
            await service.stop()


__all__ = ["ManagedService", "mark_degraded", "mark_recovered", "running"]
