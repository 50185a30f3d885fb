"""Service states and the transitions allowed between them.

```
CREATED -> STARTING -> READY <-> DEGRADED -> STOPPING -> STOPPED
                 \\          \\         \\          \\
                  +----------+---------+----------+--> FAILED -> STOPPING
```

READY and DEGRADED both serve requests; DEGRADED means the service works with reduced capacity
(for example after an out-of-memory error halved its batch budget). FAILED may only move to
STOPPING, so that a failed service can still release what it holds.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable

from mlservices.errors import StateError

logger = logging.getLogger(__name__)


class ServiceState(str, enum.Enum):
    """Where a service is in its life."""

    CREATED = "created"
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


S = ServiceState
TRANSITIONS: dict[ServiceState, frozenset[ServiceState]] = {
    S.CREATED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.READY, S.FAILED}),
    S.READY: frozenset({S.DEGRADED, S.STOPPING, S.FAILED}),
    S.DEGRADED: frozenset({S.READY, S.STOPPING, S.FAILED}),
    S.STOPPING: frozenset({S.STOPPED, S.FAILED}),
    S.STOPPED: frozenset(),
    S.FAILED: frozenset({S.STOPPING}),
}
SERVING = frozenset({S.READY, S.DEGRADED})

Listener = Callable[[ServiceState, ServiceState], None]


def can_transition(source: ServiceState, target: ServiceState) -> bool:
    """True when ``source -> target`` is one of the allowed transitions."""
    return target in TRANSITIONS[source]


class StateMachine:
    """The state of one service; thread-safe, with a history and transition listeners.

    Args:
        name: the service's name, used in error messages and logs.

    Example:
        >>> machine = StateMachine("embedding")
        >>> machine.transition(ServiceState.STARTING)
        >>> machine.require(SERVING, "embed_text")
        Traceback (most recent call last):
        ...
        mlservices.errors.StateError: embed_text needs the embedding service to be ...
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = ServiceState.CREATED
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.history: list[tuple[ServiceState, float]] = [(self._state, time.time())]

    @property
    def state(self) -> ServiceState:
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(old, new)`` after each transition (exceptions are logged, not raised)."""
        self._listeners.append(listener)

    def transition(self, target: ServiceState) -> ServiceState:
        """Move to ``target``; returns the previous state.

        Raises:
            StateError: ``target`` is not reachable from the current state.
        """
        with self._lock:
            source = self._state
            if not can_transition(source, target):
                allowed = ", ".join(sorted(s.value for s in TRANSITIONS[source])) or "none"
                raise StateError(
                    f"the {self.name} service cannot go from {source} to {target}",
                    hint=f"from {source} it may go to: {allowed}",
                    state=source.value,
                    target=target.value,
                )
            self._state = target
            self.history.append((target, time.time()))
        logger.info("%s service: %s -> %s", self.name, source, target)
        for listener in list(self._listeners):
            try:
                listener(source, target)
            except Exception:
                logger.exception("state listener of the %s service failed", self.name)
        return source

    def require(self, allowed: Iterable[ServiceState], operation: str) -> ServiceState:
        """Check that the service is in one of ``allowed`` before ``operation``.

        Raises:
            StateError: it is not; the message says which state it is in and what to do.
        """
        state, allowed = self._state, frozenset(allowed)
        if state in allowed:
            return state
        raise StateError(
            f"{operation} needs the {self.name} service to be "
            f"{' or '.join(sorted(s.value for s in allowed))}, but it is {state}",
            hint=_hint(state),
            state=state.value,
            operation=operation,
        )


def _hint(state: ServiceState) -> str:
    if state is ServiceState.CREATED:
        return "start it first: `await service.start()` or `async with service:`"
    if state is ServiceState.STARTING:
        return "wait for start() to finish"
    if state in (ServiceState.STOPPING, ServiceState.STOPPED):
        return "create a new service; a stopped service cannot be restarted"
    if state is ServiceState.FAILED:
        return "see the logged error that failed it, stop it and create a new one"
    return "retry"


__all__ = ["SERVING", "TRANSITIONS", "ServiceState", "StateMachine", "can_transition"]
